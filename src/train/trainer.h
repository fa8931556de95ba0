// The training step of full fine-tuning and LoRA: flat parameter, gradient and AdamW
// buffers laid out by one ParamIndex, micro-batches through ForwardBatch / CrossEntropy /
// BackwardBatch, the loss normalised over every non-ignored token of the accumulated
// micro-batches (transformers >= 4.46), global-norm clipping, the schedule and AdamW.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "model/llama_batch.h"
#include "model/llama_model.h"
#include "model/param_index.h"
#include "optim/adamw.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "peft/lora.h"

namespace nibble::train {

enum class Method { kFull, kLora };
// "full", "lora"; ConfigError naming the value and the choices otherwise.
Method ParseMethod(std::string_view name);

inline constexpr int32_t kIgnoreIndex = -100;  // torch / transformers

struct TrainConfig {
  Method method = Method::kLora;
  peft::LoraConfig lora;
  size_t seq_len = 256;
  size_t batch_size = 1;                 // sequences per micro-batch
  int64_t grad_accum = 1;                // micro-batches per optimizer step
  int64_t max_steps = 0;                 // total optimizer steps (for the schedule)
  double lr = 5e-5;                      // TrainingArguments.learning_rate
  optim::LrSchedule schedule = optim::LrSchedule::kLinear;  // TrainingArguments default
  int64_t warmup_steps = 0;
  double weight_decay = 0.0;             // TrainingArguments default
  double max_grad_norm = 1.0;            // TrainingArguments default
  optim::AdamWConfig adam{0.9, 0.999, 1e-8, 0.0};  // betas and eps as TrainingArguments
  uint64_t seed = 42;                    // TrainingArguments default
  // Recompute each layer's activations in backward (gradient_checkpointing): the same
  // losses and gradients, bit for bit, with about 1/L of the layers' activation memory.
  bool gradient_checkpointing = false;
  optim::OptimSpec optim;    // --optim (adamw_torch by default)
  std::string paged_dir;     // where a paged optimizer's state file goes ("" = the current directory)
};

// Bytes held by each part of training, from separate counting allocators.
struct TrainMemory {
  size_t weights = 0;      // trainable parameters (full: every weight, as f32) ; LoRA: adapters
  size_t gradients = 0;
  size_t optimizer = 0;    // AdamW m and v in RAM (8-bit codes and absmax included)
  size_t optimizer_paged = 0;  // state in the paged optimizer's file (disk-backed)
  size_t activations = 0;  // kept for backward (peak)
  size_t logits = 0;       // [N, V] (peak)
  size_t scratch = 0;      // temporaries inside forward and backward (peak)
};

// One micro-batch: B sequences of T tokens each (B ≤ batch_size, T ≤ seq_len), and their
// targets (kIgnoreIndex where no loss counts, padding included).
struct TokenBatch {
  std::span<const int32_t> tokens, targets;
  size_t B = 0, T = 0;
};

struct StepResult {
  int64_t step = 0;        // optimizer steps taken, this one included
  double loss = 0;         // mean over the step's non-ignored tokens
  double lr = 0;           // the rate this step applied
  double grad_norm = 0;    // global L2 norm before clipping
  size_t tokens = 0;       // tokens that counted in the loss
};

// The mean cross-entropy (targets equal to kIgnoreIndex left out) of `model` as it stands,
// with whatever adapters its weights carry and no dropout, over consecutive batches of
// batch × seq_len tokens (a trailing partial batch is left out; 0 when nothing counts).
// No parameter, gradient or optimizer buffers: activations and logits for one batch from
// ctx.allocator().
double EvaluateLoss(const model::LlamaModel& model, std::span<const int32_t> tokens, std::span<const int32_t> targets,
                    size_t batch, size_t seq_len, ExecContext& ctx);

class Trainer {
 public:
  // `base` supplies the config and the frozen weights (borrowed; it must outlive the
  // trainer). Full fine-tuning copies every weight into the f32 parameter buffer (it
  // needs dense weights: ConfigError for a quantized one); LoRA adds adapters on the
  // targeted Linears and leaves the base borrowed. Validates the config (ConfigError
  // naming the option).
  Trainer(const model::LlamaModel& base, const TrainConfig& config, ExecContext& ctx);
  ~Trainer();

  // One optimizer step over grad_accum micro-batches: tokens and targets hold
  // grad_accum · batch_size · seq_len ids each (targets may be kIgnoreIndex). Throws
  // ConfigError naming the step when the loss or the gradient norm is NaN or infinite
  // (nothing is updated then), or when no target counts.
  StepResult Step(std::span<const int32_t> tokens, std::span<const int32_t> targets);
  // The same over grad_accum micro-batches of any shape within batch_size × seq_len (padded
  // instruction data: each micro-batch as long as its longest sequence).
  StepResult Step(std::span<const TokenBatch> micro);

  // The first half of Step: gradients of the mean loss into grads() (not clipped, no
  // update). Returns the loss; *counted gets the number of targets that counted.
  double ComputeGradients(std::span<const int32_t> tokens, std::span<const int32_t> targets, size_t* counted);
  double ComputeGradients(std::span<const TokenBatch> micro, size_t* counted);

  // Mean loss over tokens/targets (batch_size · seq_len per micro-batch), no update.
  double Evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets);
  // Summed loss of one micro-batch (no dropout, no update); *counted gets its counted targets.
  double EvaluateBatch(const TokenBatch& b, size_t* counted);

  // The optimizer's state, one slot per index() entry (meaningful once step() ≥ 1).
  const optim::AdamWState& optimizer() const { return *opt_; }
  // Puts the trainer where a checkpoint left it: `step` optimizer steps taken, the
  // parameters as saved (index().total() floats). The state is then written into
  // mutable_optimizer() (a step of 0 zeroes it).
  void Restore(int64_t step, const float* params);
  optim::AdamWState& mutable_optimizer() { return *opt_; }

  const model::LlamaModel& model() const { return *model_; }  // with the trained parameters bound
  const model::ParamIndex& index() const { return index_; }
  const float* params() const { return static_cast<const float*>(params_.data()); }
  // Writable parameters (index().total() floats), for loading an adapter or a checkpoint.
  float* mutable_params() { return static_cast<float*>(params_.data()); }
  const float* grads() const { return static_cast<const float*>(grads_.data()); }
  const peft::LoraModel* lora() const { return lora_.get(); }
  const TrainConfig& config() const { return config_; }
  int64_t step() const { return step_; }
  size_t num_trainable() const { return index_.num_params(); }
  TrainMemory memory() const;

 private:
  // Forward (+ backward with d(logits) scaled by `scale`) of one micro-batch; returns the
  // summed loss of its counted targets. rng_counter seeds the adapters' dropout masks.
  double MicroBatch(const TokenBatch& b, float scale, bool backward, uint64_t rng_counter, size_t* counted);
  std::vector<TokenBatch> FixedShape(std::span<const int32_t> tokens, std::span<const int32_t> targets) const;

  TrainConfig config_;
  ExecContext& ctx_;
  model::ParamIndex index_;
  Allocator weights_alloc_, grads_alloc_, optim_alloc_, acts_alloc_, logits_alloc_, scratch_alloc_;
  Tensor params_, grads_;
  std::unique_ptr<optim::AdamWState> opt_;
  std::unique_ptr<peft::LoraModel> lora_;
  std::unique_ptr<model::LlamaModel> model_;
  model::ModelGrads model_grads_;
  std::unique_ptr<model::BatchActivations> acts_;
  int64_t step_ = 0;
};

}  // namespace nibble::train
