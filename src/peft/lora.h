// LoRA as PEFT computes it (../shared/specs/gptq-lora-zero.md §3.1–3.3, peft
// tuners/lora/layer.py): for a targeted Linear with frozen W [out, in],
//   y = x·Wᵀ + s · (dropout(x)·Aᵀ)·Bᵀ,   A [r, in], B [out, r],
//   s = lora_alpha / r, or lora_alpha / √r with use_rslora.
// The adapters plug into model::LinearWeight::adapter (the model never includes peft);
// their parameters and gradients live in the flat buffers of a model::ParamIndex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/linear.h"
#include "model/llama_config.h"
#include "model/llama_weights.h"
#include "model/param_index.h"

namespace nibble::peft {

// init_lora_weights: true (A Kaiming-uniform a=√5, B zero), "gaussian" (A ~ N(0, 1/r²),
// B zero) or false (both as nn.Linear's default init: Kaiming-uniform a=√5, so ΔW ≠ 0).
enum class LoraInit { kKaiming, kGaussian, kNone };

struct LoraConfig {
  int64_t r = 8;                            // PEFT default
  double lora_alpha = 8;                    // PEFT default
  double lora_dropout = 0.0;                // PEFT default; inverted dropout on A's input
  std::vector<std::string> target_modules;  // module names or suffixes, or {"all-linear"}
  bool use_rslora = false;
  LoraInit init = LoraInit::kKaiming;
  bool fan_in_fan_out = false;              // true only for [in, out]-stored weights (GPT-2)
  std::string bias = "none";                // only "none" is implemented

  double Scale() const;
  // ConfigError naming the field: r >= 1, finite alpha, dropout in [0, 1), a target
  // list, fan_in_fan_out false (Llama Linears are [out, in]), bias "none".
  void Validate() const;
};

// "q_proj" -> kKaiming ... for init_lora_weights as text ("true", "false", "gaussian").
LoraInit ParseLoraInit(const std::string& s);

// The HF module path of a Linear role: "model.layers.3.self_attn.q_proj", "lm_head".
std::string ModulePath(const model::RoleAt& r);

// The Linear roles `c` targets, in checkpoint order. An entry matches a module whose path
// equals it or ends with "." + entry (PEFT's list rule); "all-linear" is every Linear but
// the classifier (PEFT's definition). An entry that matches nothing is a ConfigError that
// lists the module names the model has (PEFT only fails when no entry matches; a typo in
// one entry of several is silently ignored there).
std::vector<model::RoleAt> TargetedLinears(const model::LlamaConfig& mc, const LoraConfig& c);

// One adapter: A, B and their gradients are pointers into flat buffers.
class LoraLinear final : public model::LinearAdapter {
 public:
  LoraLinear(size_t in, size_t out, size_t r, float scale, float dropout, uint64_t stream);
  void Bind(const float* a, const float* b, float* ga, float* gb) {
    a_ = a;
    b_ = b;
    ga_ = ga;
    gb_ = gb;
  }
  void Forward(const model::LinearCall& call, const float* x, float* y, size_t M) const override;
  void Backward(const model::LinearCall& call, const float* x, const float* dy, float* dx, size_t M) const override;

  size_t in() const { return in_; }
  size_t out() const { return out_; }
  size_t r() const { return r_; }
  float scale() const { return scale_; }
  const float* a() const { return a_; }
  const float* b() const { return b_; }

  // The dropout keep-mask of row `row`, column `col` for a call's rng_counter (counter-based:
  // a hash of (stream, counter, row·in + col), so a recomputation draws the same mask).
  bool Keep(uint64_t counter, size_t row, size_t col) const;

 private:
  // xd: [M, in] = dropout(x) (x itself when not training or p = 0: returns x).
  const float* Dropped(const model::LinearCall& call, const float* x, size_t M, float* xd) const;

  size_t in_, out_, r_;
  float scale_, dropout_;
  uint64_t stream_;
  const float *a_ = nullptr, *b_ = nullptr;
  float *ga_ = nullptr, *gb_ = nullptr;
};

// Every adapter of one model. Construction adds "base_model.model.<module>.lora_A.weight"
// [r, in] and "...lora_B.weight" [out, r] of each targeted Linear to `index` (PEFT's saved
// names), with weight decay (the HF Trainer decays every weight that is not a bias or norm).
class LoraModel {
 public:
  LoraModel(const model::LlamaConfig& mc, const LoraConfig& c, model::ParamIndex& index, uint64_t seed);

  const LoraConfig& config() const { return config_; }
  const std::vector<model::RoleAt>& targets() const { return targets_; }
  const std::vector<std::unique_ptr<LoraLinear>>& adapters() const { return adapters_; }
  // ParamIndex entries of adapter i: lora_A at entry_a(i), lora_B at entry_a(i) + 1.
  size_t entry_a(size_t i) const { return first_entry_ + 2 * i; }

  // Writes PEFT's initial A and B for config().init into params (seeded; not torch's RNG).
  void Init(const model::ParamIndex& index, float* params) const;
  // Points the adapters at params and grads (index.total() floats each) and sets each
  // targeted LinearWeight's adapter slot in `w`.
  void Attach(const model::ParamIndex& index, const float* params, float* grads, model::LlamaWeights& w) const;

  // W [out, in] f32 += s·B·A (merge) or −= (unmerge), the product summed in double and
  // added in f32, as PEFT computes ΔW in f32 on CPU.
  static void Merge(const LoraLinear& a, float* w, bool unmerge = false);

 private:
  LoraConfig config_;
  std::vector<model::RoleAt> targets_;
  std::vector<std::unique_ptr<LoraLinear>> adapters_;
  size_t first_entry_ = 0;
  uint64_t seed_;
};

}  // namespace nibble::peft
