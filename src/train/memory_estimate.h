// Training memory by component, estimated from shapes alone and measured on a run, in one
// form (`nibble memory --json`, OUT/memory.json): the byte formulas live here and nowhere
// else (docs/MEMORY.md derives them; the ZeRO stages divide them).
//
// Components (bytes):
//   weights          the base's weights as held (dense at their dtype; 4-bit/8-bit codes)
//                    plus the trainable f32 parameters (full: every weight; LoRA: adapters)
//   quant_constants  the quantized base's absmax / scales (nested: u8 codes + nested absmax)
//   gradients        f32, one per trainable parameter
//   optimizer_state  AdamW's moments in RAM (f32, or 8-bit codes + absmax per 256)
//   optimizer_paged  moments in a paged optimizer's file (disk-backed: not in the total)
//   activations      kept for backward (every layer, or one with gradient checkpointing)
//   logits           [B·T, V] f32 (reused as their gradient)
//   scratch          the largest temporaries of forward and backward
//   total            the sum of all but optimizer_paged
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "model/llama_config.h"
#include "optim/optimizer.h"
#include "peft/lora.h"
#include "quant/qtensor.h"
#include "train/trainer.h"

namespace nibble::train {

struct MemoryComponents {
  uint64_t weights = 0, quant_constants = 0, gradients = 0, optimizer_state = 0, optimizer_paged = 0,
           activations = 0, logits = 0, scratch = 0;
  uint64_t total() const {
    return weights + quant_constants + gradients + optimizer_state + activations + logits + scratch;
  }
  // {"components": {"weights": B, ...}, "total": B}
  nlohmann::json ToJson() const;
};

// How the base's Linear weights are held.
enum class BaseStorage { kF32, kBf16, kNf4, kFp4, kInt8 };

struct EstimateOptions {
  TrainConfig train;                  // method, LoRA targets and rank, batch, seq_len, optim, checkpointing
  BaseStorage linears = BaseStorage::kBf16;
  bool double_quant = false;          // kNf4 / kFp4
  quant::ComputeDtype compute = quant::ComputeDtype::kF32;  // 4-bit layers' compute dtype
  // Everything else (embedding, norms, untied lm_head) and a dense base: 4 (f32) or 2 (bf16).
  int dense_bytes = 2;
  // Full fine-tuning keeps a converted base (a GGUF block format widened at load) besides
  // its f32 parameters; a mapped base is released.
  bool base_converted_at_load = false;
  int threads = 1;
  int zero_stage = 0;                 // 0..3: what is divided by world_size
  int world_size = 1;
};

// Trainable parameters of `t` on `c` (padding excluded).
uint64_t TrainableParams(const model::LlamaConfig& c, const TrainConfig& t);

// Estimate from the config alone (ConfigError for a bad option, as the trainer's).
MemoryComponents EstimateTrainingMemory(const model::LlamaConfig& c, const EstimateOptions& o);

// Bytes of a quantized weight [rows, cols] held as `storage` (codes, then constants).
void QuantizedBytes(BaseStorage storage, bool double_quant, int64_t rows, int64_t cols, uint64_t* codes,
                    uint64_t* constants);

// What a finished or running trainer holds, read from its allocators and the base's own
// tensors: `base` is the frozen model the trainer borrows; `converted_bytes` the base's
// weights converted at load and still allocated (full fine-tuning keeps none of a mapped base).
MemoryComponents MeasuredTrainingMemory(const Trainer& tr, const model::LlamaModel& base, uint64_t converted_bytes);

}  // namespace nibble::train
