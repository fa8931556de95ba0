// KV cache of a Llama model: per layer, keys (RoPE applied) and values of every
// position so far, f32, allocated through an Allocator so the bytes are counted.
#pragma once

#include <cstdint>

#include "core/allocator.h"
#include "core/tensor.h"
#include "model/llama_config.h"

namespace nibble::model {

class KvCache {
 public:
  // Holds max_seq positions; throws ConfigError when max_seq < 1 and ShapeError when
  // the byte count overflows. `config` must be valid. Contents start uninitialised:
  // Forward writes rows before it reads them.
  KvCache(Allocator& alloc, const LlamaConfig& config, int64_t max_seq);

  int64_t max_seq() const { return max_seq_; }
  int64_t num_layers() const { return num_layers_; }
  int64_t kv_dim() const { return kv_dim_; }  // KV·Dh
  // [max_seq, KV*Dh] f32 of one layer; row p holds position p.
  float* k(int64_t layer) { return static_cast<float*>(k_.data()) + layer * max_seq_ * kv_dim_; }
  float* v(int64_t layer) { return static_cast<float*>(v_.data()) + layer * max_seq_ * kv_dim_; }
  size_t num_bytes() const { return k_.num_bytes() + v_.num_bytes(); }

 private:
  int64_t max_seq_, num_layers_, kv_dim_;
  Tensor k_;  // [L, max_seq, KV*Dh] f32
  Tensor v_;  // [L, max_seq, KV*Dh] f32
};

}  // namespace nibble::model
