// The Llama forward pass of ../shared/specs/gptq-lora-zero.md §4.2 over a KV cache, f32
// activations with f32 or bf16 weight matrices: a prompt of T tokens runs batched
// (matmuls with M = T), one token runs as GEMVs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/exec_context.h"
#include "model/kv_cache.h"
#include "model/llama_config.h"
#include "model/llama_weights.h"
#include "quant/qtensor.h"

namespace nibble::model {

enum class LogitsMode {
  kLast,  // logits of the last token only: [V]
  kAll,   // logits of every token: [T, V]
};

class LlamaModel {
 public:
  // Validates the config (ConfigError) and the weights against it (ShapeError). The
  // weights are borrowed: their memory must outlive the model.
  LlamaModel(const LlamaConfig& config, LlamaWeights weights, const quant::QLinearPolicy& quant = {});

  const LlamaConfig& config() const { return config_; }
  const LlamaWeights& weights() const { return weights_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }  // [Dh/2], rope_scaling applied
  // How the quantized weights compute (the loader's choice; every call passes it on).
  const quant::QLinearPolicy& quant_policy() const { return quant_; }

  // Runs tokens [T] i32 at positions start_pos .. start_pos+T-1, reading positions
  // 0 .. start_pos-1 from `cache` and writing the new ones into it.
  // logits: [V] f32 (kLast) or [T, V] f32 (kAll).
  // Throws ShapeError when T == 0, a token id is outside [0, V), start_pos < 0,
  // start_pos + T exceeds cache.max_seq(), the cache was made for another shape, or
  // logits has the wrong size. Scratch memory comes from ctx.allocator().
  void Forward(ExecContext& ctx, KvCache& cache, std::span<const int32_t> tokens, int64_t start_pos,
               std::span<float> logits, LogitsMode mode = LogitsMode::kLast) const;

 private:
  LlamaConfig config_;
  LlamaWeights weights_;
  std::vector<float> inv_freq_;  // [Dh/2] RoPE inverse frequencies, rope_scaling applied
  quant::QLinearPolicy quant_;
};

}  // namespace nibble::model
