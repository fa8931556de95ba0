// EstimateTrainingMemory: the trainer's buffers, formula by formula (each names the code
// whose allocation it counts); MeasuredTrainingMemory: the same components read back.
#include "train/memory_estimate.h"

#include <algorithm>

#include "model/linear.h"
#include "model/llama_batch.h"
#include "model/llama_layer.h"
#include "model/param_index.h"
#include "nibble/error.h"
#include "quant/qlinear.h"

namespace nibble::train {
namespace {

uint64_t Div(uint64_t b, int k) { return (b + static_cast<uint64_t>(k) - 1) / static_cast<uint64_t>(k); }

bool IsBaseLinear(const model::RoleAt& r) {
  return r.role->kind == model::RoleKind::kLinear && r.role->hf != "lm_head.weight";
}

// The trainer's ParamIndex (train/trainer.cc builds the same).
model::ParamIndex TrainableIndex(const model::LlamaConfig& c, const TrainConfig& t) {
  model::ParamIndex index;
  if (t.method == Method::kFull) {
    model::ForEachRole(c, [&](const model::RoleAt& r) { index.Add(r.HfName(), r.role->ShapeIn(c), r.role->is_matrix()); });
  } else {
    peft::LoraModel lora(c, t.lora, index, t.seed);
  }
  return index;
}

}  // namespace

uint64_t TrainableParams(const model::LlamaConfig& c, const TrainConfig& t) { return TrainableIndex(c, t).num_params(); }

nlohmann::json MemoryComponents::ToJson() const {
  return {{"components",
           {{"weights", weights},
            {"quant_constants", quant_constants},
            {"gradients", gradients},
            {"optimizer_state", optimizer_state},
            {"optimizer_paged", optimizer_paged},
            {"activations", activations},
            {"logits", logits},
            {"scratch", scratch}}},
          {"total", total()}};
}

void QuantizedBytes(BaseStorage s, bool dq, int64_t rows, int64_t cols, uint64_t* codes, uint64_t* constants) {
  const uint64_t n = static_cast<uint64_t>(rows * cols);
  if (s == BaseStorage::kInt8) {  // LLM.int8(): CB int8 [rows, cols], SCB f32 [rows]
    *codes = n;
    *constants = 4 * static_cast<uint64_t>(rows);
    return;
  }
  const uint64_t nb = (n + 63) / 64;  // bnb 4-bit: blocks of 64 in flat order
  *codes = (n + 1) / 2;
  // Nested (spec §3): u8 codes per block, an f32 absmax per 256 blocks, the 256-entry map,
  // the offset; plain: one f32 absmax per block.
  *constants = dq ? nb + 4 * ((nb + 255) / 256) + 4 * 256 + 4 : 4 * nb;
}

MemoryComponents EstimateTrainingMemory(const model::LlamaConfig& c, const EstimateOptions& o) {
  const TrainConfig& t = o.train;
  if (o.world_size < 1 || o.zero_stage < 0 || o.zero_stage > 3)
    throw ConfigError("memory estimate: zero_stage must be 0..3 and world_size at least 1");
  MemoryComponents m;
  const bool quantized = o.linears == BaseStorage::kNf4 || o.linears == BaseStorage::kFp4 ||
                         o.linears == BaseStorage::kInt8;
  if (t.method == Method::kFull && quantized)
    throw ConfigError("full fine-tuning needs dense weights: the base cannot be quantized");
  const size_t B = t.batch_size, T = t.seq_len, N = B * T;
  const size_t D = static_cast<size_t>(c.hidden_size), V = static_cast<size_t>(c.vocab_size);

  // The base as held (model/llama_weights: every role at its storage).
  uint64_t base = 0, base_constants = 0;
  model::ForEachRole(c, [&](const model::RoleAt& r) {
    const Shape s = r.role->ShapeIn(c);
    if (IsBaseLinear(r) && quantized) {
      uint64_t codes = 0, constants = 0;
      QuantizedBytes(o.linears, o.double_quant, s[0], s[1], &codes, &constants);
      base += codes;
      base_constants += constants;
    } else {
      const int bytes = r.role->is_matrix() ? (IsBaseLinear(r) && o.linears == BaseStorage::kF32 ? 4 : o.dense_bytes)
                                            : 4;  // norms and biases are f32 at load
      base += static_cast<uint64_t>(bytes) * static_cast<uint64_t>(s.NumElems());
    }
  });

  const model::ParamIndex index = TrainableIndex(c, t);
  const uint64_t params = 4 * static_cast<uint64_t>(std::max<size_t>(index.total(), 1));
  const bool full = t.method == Method::kFull;
  const uint64_t held_base = full ? (o.base_converted_at_load ? base : 0) : base;
  const int k3 = o.zero_stage >= 3 ? o.world_size : 1;
  m.weights = Div(params, k3) + Div(held_base, k3);
  m.quant_constants = Div(base_constants, k3);
  m.gradients = Div(params, o.zero_stage >= 2 ? o.world_size : 1);
  uint64_t ram = 0, paged = 0;
  for (const model::ParamEntry& e : index.entries()) {
    const optim::TensorStateBytes sb = optim::StateBytes(t.optim, e.count);
    (sb.paged ? paged : ram) += sb.bytes;
  }
  const int k1 = o.zero_stage >= 1 ? o.world_size : 1;
  m.optimizer_state = Div(ram, k1);
  m.optimizer_paged = Div(paged, k1);

  // model/llama_batch.cc: the activation buffer and the logits.
  const model::Batch batch{B, T, 0};
  m.activations = 4 * model::BatchActivations::ActivationFloats(c, batch, o.threads, t.gradient_checkpointing);
  m.logits = 4 * static_cast<uint64_t>(N) * V;

  // Scratch (the trainer's scratch allocator), the largest of:
  //   forward: QLinear's dequantized weight for N >= kQLinearGemmMinRows (f32, plus a bf16
  //            copy with bf16 compute) and a LoRA call's rank-r intermediate;
  //   backward: BackwardBatch's buffer (2·N·D + D + LayerBackwardScratch floats), plus the
  //            largest LinearBackward tile of a non-f32 weight and LoRA's backward
  //            intermediates, or (checkpointing) a layer's forward again.
  uint64_t fwd_q = 0, tile = 0, lora_fwd = 0, lora_bwd = 0;
  const bool bf16_compute = o.compute == quant::ComputeDtype::kBf16 && o.linears != BaseStorage::kInt8;
  auto linear_scratch = [&](size_t out, size_t in, bool dense_f32, bool q) {
    if (q && static_cast<int64_t>(N) >= quant::kQLinearGemmMinRows)
      fwd_q = std::max<uint64_t>(fwd_q, static_cast<uint64_t>(out) * in * (bf16_compute ? 6 : 4));
    if (!dense_f32) {
      const size_t rows = std::min(out, model::kLinearBackwardTileRows);
      tile = std::max<uint64_t>(tile, 4 * static_cast<uint64_t>(rows * in + N * rows));
    }
  };
  model::ForEachRole(c, [&](const model::RoleAt& r) {
    if (r.role->kind != model::RoleKind::kLinear) return;
    const Shape s = r.role->ShapeIn(c);
    const bool q = IsBaseLinear(r) && quantized;
    const bool f32 = full || (!q && (IsBaseLinear(r) ? o.linears == BaseStorage::kF32 : o.dense_bytes == 4));
    linear_scratch(static_cast<size_t>(s[0]), static_cast<size_t>(s[1]), f32, q);
  });
  if (c.tie_word_embeddings) linear_scratch(V, D, full || o.dense_bytes == 4, false);
  if (!full) {
    const bool drop = t.lora.lora_dropout > 0;
    for (const model::ParamEntry& e : index.entries()) {
      if (e.name.find("lora_A") == std::string::npos) continue;
      const uint64_t r = static_cast<uint64_t>(e.shape[0]), in = static_cast<uint64_t>(e.shape[1]);
      lora_fwd = std::max<uint64_t>(lora_fwd, 4 * N * (r + (drop ? in : 0)));
      lora_bwd = std::max<uint64_t>(lora_bwd, 4 * N * (2 * r + (drop ? 2 * in : 0)));
    }
  }
  const uint64_t fwd = fwd_q + lora_fwd;
  const uint64_t bwd_base = 4 * (2 * static_cast<uint64_t>(N) * D + D + model::LayerBackwardScratch(c, batch, o.threads));
  const uint64_t bwd = bwd_base + std::max(tile + lora_bwd, t.gradient_checkpointing ? fwd : 0);
  m.scratch = std::max(fwd, bwd);
  return m;
}

MemoryComponents MeasuredTrainingMemory(const Trainer& tr, const model::LlamaModel& base, uint64_t converted_bytes) {
  MemoryComponents m;
  const TrainMemory t = tr.memory();
  uint64_t held = 0, constants = 0;
  if (tr.config().method == Method::kFull) {
    held = converted_bytes;
  } else {
    model::ForEachRoleSlot(base.weights(), [&](const model::RoleAt& r) {
      const model::LinearWeight* lin = r.Linear(base.weights());
      if (lin != nullptr && lin->q != nullptr) {
        const quant::QTensor& q = *lin->q;
        held += q.codes.size();
        constants += q.StorageBytes() - q.codes.size();
        return;
      }
      const ConstTensorView& v = lin != nullptr ? lin->dense : *r.View(base.weights());
      if (v.data != nullptr) held += DTypeBytes(v.dtype, static_cast<uint64_t>(v.shape.NumElems()));
    });
  }
  m.weights = t.weights + held;
  m.quant_constants = constants;
  m.gradients = t.gradients;
  m.optimizer_state = t.optimizer;
  m.optimizer_paged = t.optimizer_paged;
  m.activations = t.activations;
  m.logits = t.logits;
  m.scratch = t.scratch;
  return m;
}

}  // namespace nibble::train
