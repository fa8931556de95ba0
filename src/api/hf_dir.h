// Writing a Hugging Face model directory (config.json, model.safetensors, tokenizer
// files) through io::AtomicDir: everything goes into a temporary directory beside OUT
// and is exchanged with OUT at the end, so OUT is never half-written (see atomic_writer.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/model_loader.h"
#include "api/model_source.h"
#include "model/param_index.h"
#include "io/atomic_writer.h"
#include "model/llama_config.h"
#include "tokenizer/vocab.h"

namespace nibble::api {

class HfDirWriter {
 public:
  // ConfigError when `out_dir` exists and is not empty (unless `overwrite`, which
  // replaces it on Commit if io::CheckOverwriteTarget allows); `inputs` are the paths
  // OUT must not hold.
  HfDirWriter(std::string out_dir, bool overwrite, std::vector<std::string> inputs);

  // Path of `name` inside the temporary directory.
  std::string File(std::string_view name) const { return dir_.File(name); }
  void WriteText(std::string_view name, std::string_view text);
  void CopyFrom(const std::string& src_path, std::string_view name);
  // The directory itself, for writers that create their files in File(name); Add(name)
  // lists such a file among those Commit() returns.
  io::AtomicDir& atomic() { return dir_; }
  void Add(std::string_view name) { files_.emplace_back(name); }
  // Puts the directory in place of OUT; returns the file names written.
  std::vector<std::string> Commit();

 private:
  io::AtomicDir dir_;
  std::vector<std::string> files_;
};

// config.json of a Llama in transformers' keys (LlamaForCausalLM): sizes, rms_norm_eps,
// rope_theta and rope_scaling, tie_word_embeddings, bos/eos ids from `vocab`, torch_dtype.
// ConfigError for RoPE scaling transformers cannot express (GGUF rope_freqs divisors).
nlohmann::json LlamaConfigToHfJson(const model::LlamaConfig& c, std::string_view torch_dtype,
                                   const tokenizer::Vocab* vocab);

// The tokenizer files of OUT: copied from an HF source directory when it has them
// (tokenizer.json, tokenizer_config.json, tokenizer.model, special_tokens_map.json,
// generation_config.json), else made from `vocab` (tokenizer.json and
// tokenizer_config.json, with GGUF's chat template when present).
void WriteTokenizerFiles(HfDirWriter& out, const ModelSource& src, const tokenizer::Vocab* vocab,
                         int64_t model_max_length);

// A whole model as a Hugging Face directory from a flat f32 buffer of every role (laid out
// by `index` under the HF names, in nibble's row order): model.safetensors in `dtype`
// (q/k rows back in HF's rotate-half order for a Meta-layout source), config.json (the
// source's own for an HF source, without quantization_config) and the tokenizer files.
// Used by full fine-tuning and `nibble merge`.
void WriteHfModel(HfDirWriter& out, const LoadedModel& m, const model::ParamIndex& index, const float* params,
                  DType dtype);

// Rows of a q_proj / k_proj weight (or bias) stored in Meta's adjacent-pair RoPE order
// (llama2.c, GGUF) reordered to Hugging Face's rotate-half order: for each head of Dh
// rows, HF row j*Dh/2 + i is Meta row 2i + j. data: [heads*Dh, cols] f32, in place.
// `inverse`: from HF's order back to Meta's.
void PermuteMetaToHf(float* data, int64_t heads, int64_t head_dim, int64_t cols, bool inverse = false);

}  // namespace nibble::api
