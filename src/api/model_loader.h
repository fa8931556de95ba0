// Building a runnable Llama model from any ModelSource: LlamaConfig from the file's
// own keys, f32 weight views (borrowed from the map or converted into owned tensors),
// and the tokenizer (GGUF metadata, llama2.c tokenizer .bin).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/model_source.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "io/bnb_checkpoint.h"
#include "io/gguf.h"
#include "model/llama_config.h"
#include "model/llama_model.h"
#include "nibble/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace nibble::api {

// The public load choices (include/nibble/model.h) under their api names.
using nibble::ParseWeightDtype;
using nibble::WeightDtype;

struct LoadOptions {
  WeightDtype weights = WeightDtype::kAuto;
  std::string tokenizer_path;  // empty: the model's own (see FindDefaultTokenizer)
  bool load_weights = true;    // false: config and tokenizer only
  bool load_tokenizer = true;
  // 4-bit layers quantize activations to int8 and multiply integers (quant/qgemv4_i8.h):
  // llama.cpp's arithmetic, faster, not bitsandbytes'. Off by default (--int8-activations).
  bool int8_activations = false;
  // The classifier (lm_head, or the tied embedding) quantized at load to int8 per row and
  // run as LLM.int8() without outlier columns (int8 activations per token, exact int32
  // products): half the bytes of a bf16 classifier per token, like llama.cpp's Q8_0 output.
  // The embedding lookup keeps the dense table. Off by default (--int8-classifier).
  bool int8_classifier = false;
  // Dense float weights are scanned at load and a NaN or infinity is a NonFiniteError
  // naming the tensor and the index; true skips the scan (--allow-nonfinite).
  bool allow_nonfinite = false;
  // Linear weights (not lm_head) quantized at load when the file holds them unquantized
  // (ModelOptions::load_quantized); the QTensors record quantize_linears->compute.
  std::optional<quant::QuantizeSpec> quantize_linears;
  // Overrides the compute dtype every quantized layer records (ModelOptions::compute_dtype).
  std::optional<quant::ComputeDtype> compute;
};

// Everything a running model borrows from, kept together so the views stay valid:
// the mapped file, the converted f32 copies and the model that points into both.
// The ExecContext whose allocator made `owned` must outlive this object.
struct LoadedModel {
  ModelSource source;
  model::LlamaConfig config;
  std::vector<Tensor> owned;                        // weights converted at load (f32 or bf16)
  // Quantized Linear weights (bitsandbytes / nibble checkpoints), codes borrowed from the
  // map; unique_ptr so the model's pointers stay valid. quant_config is set with them.
  std::vector<std::unique_ptr<const quant::QTensor>> quantized;  // frozen once built
  std::optional<io::QuantizationConfig> quant_config;
  std::unique_ptr<model::LlamaModel> model;         // null when !load_weights
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;  // null when !load_tokenizer
  std::string tokenizer_source;                     // the file the vocabulary came from
  int64_t int8_activation_layers = 0;               // quantized layers running with int8 activations
  int64_t checkpoint_quantized_layers = 0;          // quantized layers stored in the file
  int64_t load_quantized_layers = 0;                // quantized at load (LoadOptions::quantize_linears)
  bool classifier_was_quantized = false;            // lm_head already quantized: --int8-classifier kept it
};

// Opens `path` and builds what `options` asks for. Throws ConfigError for an
// unsupported architecture (naming the field and its value), a missing config key or
// a tokenizer whose vocabulary size differs from the model's (naming both numbers).
std::unique_ptr<LoadedModel> LoadModel(const std::string& path, const LoadOptions& options, ExecContext& ctx);

// Warnings for the int8 load options: --int8-activations with no layer that can use it
// (no 4-bit quantized layers, or none whose rows are whole blocks of a multiple of 64) or
// under the scalar CPU cap (no AVX2 or VNNI kernel may run: the scalar reference runs);
// --int8-classifier on a
// checkpoint whose lm_head is already quantized (kept as stored).
std::vector<std::string> Int8OptionWarnings(const LoadedModel& m, const LoadOptions& options);

// The model's configuration from its own metadata (llama2.c header, GGUF `llama.*`
// keys, HF config.json beside the safetensors).
model::LlamaConfig ConfigFromSource(const ModelSource& src);

// The GGUF `tokenizer.ggml.*` keys as a Vocab, with llama.cpp's defaults for absent
// keys. Throws FormatError naming the key when one has the wrong type.
tokenizer::Vocab VocabFromGguf(const io::GgufFile& g);

// An HF config.json read on its own (`path` is the file or its directory), as the loader
// reads it beside safetensors weights.
model::LlamaConfig ConfigFromHfConfigJson(const std::string& path);

// The `quantization_config` of an HF checkpoint's config.json, if any (nullopt for
// GGUF, llama2.c and unquantized HF). ConfigError naming the key for a bad block.
std::optional<io::QuantizationConfig> QuantConfigFromSource(const ModelSource& src);

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; other names unchanged.
std::string GgufToHfName(const std::string& name);

// The HF weight names of the quantizable projections of a Llama (q/k/v/o, gate/up/down
// per layer, then lm_head), in file order.
std::vector<std::string> LinearWeightNames(const model::LlamaConfig& c);

// A tokenizer file on its own: GGUF (by magic), HF tokenizer.json (by name or JSON
// content) or tokenizer.model (by name), each with the tokenizer_config.json beside it
// applied when there is one, or llama2.c tokenizer .bin (its token count found by
// walking the records). `vocab_size`, when given, must match (ConfigError).
tokenizer::Vocab VocabFromFile(const std::string& path, std::optional<int64_t> vocab_size);

// llama2.c keeps the tokenizer in a separate file: tok512.bin or tokenizer.bin in the
// model's directory. Throws ConfigError asking for -t when neither exists.
std::string FindDefaultTokenizer(const std::string& model_path);

// A Hugging Face checkpoint's tokenizer: tokenizer.json, else tokenizer.model, in the
// model's directory (`model_path` is that directory or a file in it). Throws
// ConfigError asking for -t when neither exists.
std::string FindHfTokenizer(const std::string& model_path);

// The model's own chat template: GGUF 'tokenizer.chat_template', or chat_template.jinja /
// tokenizer_config.json 'chat_template' (a string, or the list entry named "default")
// beside HF weights; nullopt when it has none. FormatError / ConfigError for a malformed one.
std::optional<std::string> FindModelChatTemplate(const LoadedModel& m);

}  // namespace nibble::api
