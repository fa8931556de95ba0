// A model loaded once (weights, tokenizer, load-time choices) and then passed to every
// run: Generate, ChatSession, EvaluatePerplexity and Finetune each take a `const Model&`,
// so a program (a server, a notebook, a sweep) pays for loading once. The option structs
// of those calls keep their load fields for the one-shot overloads, which load a Model
// from them and call the Model overload.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/api.h"

namespace nibble {

// Storage of the weight matrices (embedding, projections, classifier) once loaded; norms
// and biases are always f32. The matmul kernel is picked per matrix by its dtype.
enum class WeightDtype {
  kAuto,  // bf16-stored matrices stay bf16 (borrowed from the map); everything else f32
  kF32,   // every matrix converted to f32 (the reference path)
  kBf16,  // every matrix rounded to bf16 (RNE) at load: half the bytes per token
};

// "auto", "f32", "bf16" (the CLI's --dtype); ConfigError naming the value otherwise.
NIBBLE_API WeightDtype ParseWeightDtype(std::string_view name);

struct ModelOptions {
  std::string model_path;      // GGUF, llama2.c .bin, or HF safetensors file/directory
  std::string tokenizer_path;  // empty: the model's own (GGUF metadata; llama2.c: tok512.bin or
                               // tokenizer.bin beside the model; HF: tokenizer.json)
  // A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) applied
  // unmerged: every targeted Linear adds s·B·A·x to its output, as PeftModel does.
  std::string adapter_path;
  WeightDtype weight_dtype = WeightDtype::kAuto;
  // 4-bit layers take int8 activations (llama.cpp's arithmetic, faster; not bitsandbytes'
  // compute-dtype semantics: docs/QUALITY.md shows the KL-divergence cost). Off by default.
  bool int8_activations = false;
  // The classifier quantized at load to int8 per row (LLM.int8() without outliers): half
  // the bytes per token of a bf16 classifier, like llama.cpp's Q8_0 output. Off by default.
  bool int8_classifier = false;
  // Quantize the Linear weights at load, as transformers' BitsAndBytesConfig does for
  // QLoRA and k-bit LoRA: "nf4" or "fp4" (load_in_4bit, bnb_4bit_quant_type, blocks of 64)
  // or "int8" (load_in_8bit: LLM.int8() with llm_int8_threshold 6.0, has_fp16_weights
  // False). Empty keeps them as stored. lm_head stays unquantized (transformers skips it),
  // and weights the checkpoint already holds quantized stay as stored.
  std::string load_quantized;
  bool load_double_quant = false;  // bnb_4bit_use_double_quant (BitsAndBytesConfig's default: off)
  // The dtype 4-bit layers compute in: "float32", "bfloat16" or "float16"
  // (bnb_4bit_compute_dtype); empty: as recorded (the checkpoint's, else float32).
  std::string compute_dtype;
  // Load weights holding NaN or infinity instead of refusing them (--allow-nonfinite).
  bool allow_nonfinite = false;
  bool load_tokenizer = true;  // false: weights only (a KL-divergence comparison needs no text)
  int num_threads = 0;         // threads for loading and for every run on this model; 0: all cores
};

class NIBBLE_API Model {
 public:
  // Loads the weights and the tokenizer. Throws ConfigError (a bad option, an unsupported
  // architecture, a vocabulary size mismatch), FormatError / IoError (bad files),
  // ShapeError (missing or misshapen tensors), NonFiniteError, each naming the field.
  explicit Model(const ModelOptions& options);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  const ModelOptions& options() const;
  int64_t context_length() const;  // max_position_embeddings
  int64_t vocab_size() const;
  int64_t num_layers() const;
  // Bytes nibble allocated at load (weights converted or quantized at load; mapped
  // weights are not counted) at their peak, load-time transients included.
  uint64_t load_peak_bytes() const;
  // Load warnings (an int8 option with no layer to apply to, or the scalar fallback).
  const std::vector<std::string>& warnings() const;

  // The library's internals (src/api); opaque to clients.
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace nibble
