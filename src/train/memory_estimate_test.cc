// The estimator against the published figures it must reproduce (the seeds', QLoRA
// paper's) on Llama-2-7B's and LLaMA-65B's shapes, and the ZeRO division. (The estimate
// against measured runs is src/api/qlora_test.cc.)
#include "train/memory_estimate.h"

#include <gtest/gtest.h>

#include "nibble/error.h"

namespace nibble::train {
namespace {

constexpr double GB = 1e9;

model::LlamaConfig Llama(int64_t D, int64_t F, int64_t L, int64_t H) {
  model::LlamaConfig c;
  c.hidden_size = D;
  c.intermediate_size = F;
  c.num_hidden_layers = L;
  c.num_attention_heads = H;
  c.num_key_value_heads = H;
  c.vocab_size = 32000;
  c.max_position_embeddings = 4096;
  return c;
}
model::LlamaConfig Llama2_7B() { return Llama(4096, 11008, 32, 32); }  // 6.74e9 parameters
model::LlamaConfig Llama65B() { return Llama(8192, 22016, 80, 64); }   // 65.3e9 parameters

uint64_t Params(const model::LlamaConfig& c) {
  uint64_t n = 0;
  model::ForEachRole(c, [&](const model::RoleAt& r) { n += static_cast<uint64_t>(r.role->ShapeIn(c).NumElems()); });
  return n;
}

EstimateOptions Qlora(int64_t r, size_t seq) {
  EstimateOptions o;
  o.train.method = Method::kLora;
  o.train.lora.r = r;
  o.train.lora.lora_alpha = 16;
  o.train.lora.target_modules = {"all-linear"};
  o.train.seq_len = seq;
  o.train.batch_size = 1;
  o.train.gradient_checkpointing = true;
  o.train.optim = optim::ParseOptim("paged_adamw_8bit");
  o.linears = BaseStorage::kNf4;
  o.double_quant = true;
  o.compute = quant::ComputeDtype::kBf16;
  o.dense_bytes = 2;
  o.threads = 2;
  return o;
}

// Full fine-tuning with AdamW: 16 bytes per parameter before activations (nibble's f32
// parameters 4 + gradients 4 + moments 8; the seeds' mixed-precision 2 + 2 + 12 comes to the
// same 16): 108 GB for Llama-2-7B's 6.74e9 parameters (112 GB at a round 7e9).
TEST(MemoryEstimate, FullFineTuningIs16BytesPerParameter) {
  const model::LlamaConfig c = Llama2_7B();
  EstimateOptions o;
  o.train.method = Method::kFull;
  o.train.seq_len = 512;
  o.linears = BaseStorage::kBf16;
  const MemoryComponents m = EstimateTrainingMemory(c, o);
  const double p = static_cast<double>(Params(c));
  EXPECT_NEAR(p, 6.74e9, 0.01e9);
  const double state = static_cast<double>(m.weights + m.gradients + m.optimizer_state);
  EXPECT_NEAR(state / p, 16.0, 0.001);  // ParamIndex pads each tensor to 16 floats
  EXPECT_NEAR(state / GB, 107.9, 0.5);
  EXPECT_EQ(m.quant_constants, 0u);
  // The 8-bit optimizer: 2 bytes + an f32 absmax per 256 per moment pair.
  o.train.optim = optim::ParseOptim("adamw_8bit");
  const MemoryComponents m8 = EstimateTrainingMemory(c, o);
  EXPECT_NEAR(static_cast<double>(m8.optimizer_state) / p, 2.0 + 8.0 / 256, 0.001);
}

// QLoRA on Llama-2-7B (NF4 + double quantization, r 64 on every Linear as the QLoRA paper):
// about 0.5 byte per base parameter for the 4-bit weights and constants (0.5 + 0.127 bit per
// parameter of constants), 3.5 GB, plus 160M f32 adapter parameters with their gradients, the
// seeds' "about 4.5 GB before activations"; at sequence length 512-1024 with checkpointing
// the total stays in the seeds' 7-10 GB.
TEST(MemoryEstimate, QloraOnLlama2_7B) {
  const model::LlamaConfig c = Llama2_7B();
  const MemoryComponents m = EstimateTrainingMemory(c, Qlora(64, 512));
  const double linear_params = 32.0 * (4 * 4096 * 4096 + 3 * 4096 * 11008);
  const double qbytes = static_cast<double>(m.quant_constants) + 0.5 * linear_params;
  EXPECT_NEAR(qbytes / linear_params, 0.5 + 0.127 / 8, 0.002);  // 4.127 bits per weight
  const double adapters = 32.0 * 64 * (4 * (4096 + 4096) + 3 * (4096 + 11008));
  EXPECT_NEAR(adapters, 160e6, 1e6);
  const double before_acts = static_cast<double>(m.weights + m.quant_constants + m.gradients + m.optimizer_state +
                                                 m.optimizer_paged);
  EXPECT_GT(before_acts / GB, 4.0);
  EXPECT_LT(before_acts / GB, 6.0);
  for (size_t seq : {512, 1024}) {
    const double total = static_cast<double>(EstimateTrainingMemory(c, Qlora(64, seq)).total()) / GB;
    EXPECT_GT(total, 4.5) << seq;
    EXPECT_LT(total, 10.0) << seq;
  }
}

// The QLoRA paper's headline: LLaMA-65B fine-tunes within a 48 GB GPU (NF4 + DQ, paged
// 8-bit AdamW, checkpointing, r 64 on every Linear, sequence 512, batch 1).
TEST(MemoryEstimate, Qlora65BFitsIn48GB) {
  const model::LlamaConfig c = Llama65B();
  EXPECT_NEAR(static_cast<double>(Params(c)), 65.3e9, 0.1e9);
  const MemoryComponents m = EstimateTrainingMemory(c, Qlora(64, 512));
  EXPECT_LT(static_cast<double>(m.total() + m.optimizer_paged) / GB, 48.0);
  EXPECT_GT(static_cast<double>(m.weights) / GB, 30.0);  // the 4-bit base alone is ~33 GB
}

// Gradient checkpointing keeps one layer's inner activations instead of L; ZeRO divides
// optimizer state (stage 1), then gradients (2), then weights (3) by the world size.
TEST(MemoryEstimate, CheckpointingAndZeroStages) {
  const model::LlamaConfig c = Llama(576, 1536, 30, 9);
  EstimateOptions o;
  o.train.method = Method::kFull;
  o.train.seq_len = 256;
  o.train.batch_size = 2;
  const MemoryComponents a = EstimateTrainingMemory(c, o);
  o.train.gradient_checkpointing = true;
  const MemoryComponents b = EstimateTrainingMemory(c, o);
  const uint64_t N = 512, inner = N * (2 * 576 + 2 * 576 + 2 * 576 + 3 * 1536 + 576) * 4;
  EXPECT_EQ(a.activations - b.activations, 29 * inner);
  o.train.gradient_checkpointing = false;
  o.world_size = 4;
  for (int stage = 1; stage <= 3; ++stage) {
    o.zero_stage = stage;
    const MemoryComponents z = EstimateTrainingMemory(c, o);
    EXPECT_EQ(z.optimizer_state, (a.optimizer_state + 3) / 4) << stage;
    EXPECT_EQ(z.gradients, stage >= 2 ? (a.gradients + 3) / 4 : a.gradients) << stage;
    EXPECT_EQ(z.weights, stage >= 3 ? (a.weights + 3) / 4 : a.weights) << stage;
    EXPECT_EQ(z.activations, a.activations) << stage;
  }
  o.zero_stage = 4;
  EXPECT_THROW(EstimateTrainingMemory(c, o), ConfigError);
  o.zero_stage = 0;
  o.linears = BaseStorage::kNf4;
  EXPECT_THROW(EstimateTrainingMemory(c, o), ConfigError);  // full fine-tuning of a 4-bit base
}

}  // namespace
}  // namespace nibble::train
