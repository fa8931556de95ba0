// llama2.c checkpoint (.bin) and tokenizer (.bin) readers (karpathy/llama2.c).
//
// Checkpoint, legacy format (version 0): 7 x i32 header
//   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
// vocab_size < 0 means an unshared classifier (|vocab_size| is the vocabulary).
// Then f32 arrays: token_embedding [V, D], rms_att [L, D], wq [L, D, D],
// wk [L, KV*Dh, D], wv [L, KV*Dh, D], wo [L, D, D], rms_ffn [L, D],
// w1 [L, F, D], w2 [L, D, F], w3 [L, F, D], rms_final [D],
// freq_cis_real [S, Dh/2], freq_cis_imag [S, Dh/2] (legacy RoPE tables, unused),
// then wcls [V, D] when unshared. Dh = D / n_heads, KV = n_kv_heads.
// The file is exactly 28 + 4 x (sum of the above) bytes; every header field must be
// in [1, 2^20] (|vocab_size| for the sign), dim % n_heads == 0, n_heads % n_kv_heads == 0
// and Dh even. Version 1+ files (magic "ak42") are recognised and rejected with a clear error.
// Tensor names are Hugging Face style (w1 = mlp.gate_proj, w2 = mlp.down_proj,
// w3 = mlp.up_proj, rms_att = input_layernorm, rms_ffn = post_attention_layernorm,
// wcls = lm_head), but q_proj/k_proj rows keep the llama2.c/Meta RoPE order, which
// rotates adjacent pairs (i, i+1), not HF's rotate-half order: they are not permuted.
// Tokenizer: i32 max_token_length, then vocab_size x {f32 score, i32 len, len bytes},
// with 0 <= len <= max_token_length and nothing after the last record.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/shape.h"
#include "io/mapped_file.h"

namespace nibble::io {

// The header; vocab_size holds |vocab_size| and shared_classifier its sign (> 0).
struct Llama2cConfig {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;
};

struct Llama2cTensor {
  std::string name;  // HF-style names, e.g. "model.layers.0.self_attn.q_proj.weight"
  Shape shape;
  std::span<const uint8_t> data;  // f32, points into the mapped file
};

class Llama2cCheckpoint {
 public:
  static Llama2cCheckpoint Open(const std::string& path);
  static Llama2cCheckpoint Parse(std::span<const uint8_t> bytes, const std::string& source);

  const Llama2cConfig& config() const { return config_; }
  // Per-layer tensors are split out one per layer; the legacy RoPE tables are
  // listed as "freq_cis_real"/"freq_cis_imag".
  const std::vector<Llama2cTensor>& tensors() const { return tensors_; }
  const std::string& source() const { return source_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::string source_;
  Llama2cConfig config_;
  std::vector<Llama2cTensor> tensors_;
};

struct Llama2cTokenizer {
  int32_t max_token_length = 0;
  std::vector<std::string> pieces;
  std::vector<float> scores;

  // `vocab_size` comes from the checkpoint (the file does not store it).
  static Llama2cTokenizer Open(const std::string& path, int32_t vocab_size);
  static Llama2cTokenizer Parse(std::span<const uint8_t> bytes, const std::string& source, int32_t vocab_size);
};

}  // namespace nibble::io
