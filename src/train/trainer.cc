// Trainer: buffers from the ParamIndex, the step, and the text windows.
#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/convert.h"
#include "kernels/cross_entropy.h"
#include "nibble/error.h"

namespace nibble::train {
namespace {

// Gradients and moments are allocated untouched: the gradients are zeroed by every
// ComputeGradients, the moments by the first Step, so their pages become resident only
// when used (after a full fine-tuning run has released the mapped model file).
Tensor Untouched(Allocator& alloc, size_t n) {
  return Tensor(alloc, DType::kF32, Shape{static_cast<int64_t>(std::max<size_t>(n, 1))});
}

Tensor Zeros(Allocator& alloc, size_t n) {
  Tensor t = Untouched(alloc, n);
  std::memset(t.data(), 0, t.num_bytes());
  return t;
}

float* F(Tensor& t) { return static_cast<float*>(t.data()); }

}  // namespace

Method ParseMethod(std::string_view name) {
  if (name == "full") return Method::kFull;
  if (name == "lora") return Method::kLora;
  throw ConfigError(fmt::format("option 'method': expected full or lora, got \"{}\"", name));
}

Trainer::Trainer(const model::LlamaModel& base, const TrainConfig& config, ExecContext& ctx)
    : config_(config), ctx_(ctx) {
  const model::LlamaConfig& c = base.config();
  if (config_.seq_len < 2)
    throw ConfigError(fmt::format("option 'seq_len': expected at least 2, got {}", config_.seq_len));
  if (static_cast<int64_t>(config_.seq_len) > c.max_position_embeddings)
    throw ConfigError(fmt::format("option 'seq_len': {} exceeds the model's context of {} tokens "
                                  "(max_position_embeddings)",
                                  config_.seq_len, c.max_position_embeddings));
  if (config_.batch_size < 1) throw ConfigError("option 'batch_size': expected at least 1");
  if (config_.grad_accum < 1) throw ConfigError("option 'grad_accum': expected at least 1");
  if (config_.max_steps < 1) throw ConfigError("option 'max_steps': expected at least 1");
  if (!(config_.lr > 0) || !std::isfinite(config_.lr))
    throw ConfigError(fmt::format("option 'lr': expected a positive number, got {}", config_.lr));
  if (!(config_.weight_decay >= 0)) throw ConfigError("option 'weight_decay': expected >= 0");
  if (base.weights().classifier_q != nullptr)
    throw ConfigError("the classifier was quantized at load (int8 classifier), which cannot be trained through");

  model::LlamaWeights w = base.weights();
  if (config_.method == Method::kFull) {
    // Every role becomes a trainable f32 tensor named as in an HF checkpoint; the HF
    // Trainer decays weights but not biases and norms.
    std::vector<model::RoleAt> roles;
    model::ForEachRole(c, [&](const model::RoleAt& r) {
      const model::LinearWeight* lin = r.Linear(w);
      if (lin != nullptr && lin->q != nullptr)
        throw ConfigError(fmt::format("full fine-tuning needs dense weights, but '{}' is quantized (use --method "
                                      "lora, or a dense model)",
                                      r.HfName()));
      index_.Add(r.HfName(), r.role->ShapeIn(c), r.role->is_matrix());
      roles.push_back(r);
    });
    params_ = Zeros(weights_alloc_, index_.total());
    grads_ = Untouched(grads_alloc_, index_.total());
    model_grads_.layers.resize(w.layers.size());
    for (size_t i = 0; i < roles.size(); ++i) {
      const model::RoleAt& r = roles[i];
      const model::ParamEntry& e = index_.entries()[i];
      model::LinearWeight* lin = r.Linear(w);
      ConstTensorView& view = lin != nullptr ? lin->dense : *r.View(w);
      float* dst = F(params_) + e.offset;
      kernels::ConvertToF32Parallel(ctx.num_threads(), view.dtype, view.data, dst, e.count);
      view = ConstTensorView{dst, DType::kF32, e.shape};
      model_grads_.Slot(r) = F(grads_) + e.offset;
    }
  } else {
    lora_ = std::make_unique<peft::LoraModel>(c, config_.lora, index_, config_.seed);
    params_ = Zeros(weights_alloc_, index_.total());
    grads_ = Untouched(grads_alloc_, index_.total());
    lora_->Init(index_, F(params_));
    lora_->Attach(index_, F(params_), F(grads_), w);
  }
  std::vector<optim::ParamRange> ranges;
  for (const model::ParamEntry& e : index_.entries()) ranges.push_back({e.offset, e.count, e.decay});
  opt_ = std::make_unique<optim::AdamWState>(config_.optim, ranges, optim_alloc_, config_.paged_dir);
  model_ = std::make_unique<model::LlamaModel>(c, std::move(w), base.quant_policy());  // compute dtype, int8
  acts_ = std::make_unique<model::BatchActivations>(acts_alloc_, logits_alloc_, c,
                                                    model::Batch{config_.batch_size, config_.seq_len, 0},
                                                    ctx.num_threads(), config_.gradient_checkpointing);
}

Trainer::~Trainer() = default;

double Trainer::MicroBatch(const TokenBatch& b, float scale, bool backward, uint64_t rng_counter, size_t* counted) {
  NB_CHECK(b.B >= 1 && b.B <= config_.batch_size && b.T >= 1 && b.T <= config_.seq_len &&
               b.tokens.size() == b.B * b.T && b.targets.size() == b.tokens.size(),
           "micro-batch {}x{} ({} tokens, {} targets) outside {}x{}", b.B, b.T, b.tokens.size(), b.targets.size(),
           config_.batch_size, config_.seq_len);
  acts_->Reshape(model::Batch{b.B, b.T, 0});
  const model::LinearCall call{ctx_.num_threads(), &scratch_alloc_, backward, rng_counter, model_->quant_policy()};
  model::ForwardBatch(*model_, b.tokens, *acts_, call);
  const model::LlamaConfig& c = model_->config();
  size_t n = 0;
  const double sum = kernels::CrossEntropy(ctx_.num_threads(), acts_->logits(), b.targets.data(),
                                           backward ? acts_->logits() : nullptr, b.targets.size(),
                                           static_cast<size_t>(c.vocab_size), kIgnoreIndex, scale, &n);
  if (counted != nullptr) *counted = n;
  if (backward) model::BackwardBatch(*model_, *acts_, acts_->logits(), model_grads_, call);
  return sum;
}

std::vector<TokenBatch> Trainer::FixedShape(std::span<const int32_t> tokens, std::span<const int32_t> targets) const {
  const size_t per = config_.batch_size * config_.seq_len;
  NB_CHECK(targets.size() == tokens.size() && tokens.size() % per == 0, "got {} tokens, {} targets for {}-token batches",
           tokens.size(), targets.size(), per);
  std::vector<TokenBatch> m;
  for (size_t k = 0; k < tokens.size(); k += per)
    m.push_back({tokens.subspan(k, per), targets.subspan(k, per), config_.batch_size, config_.seq_len});
  return m;
}

double Trainer::ComputeGradients(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                 size_t* counted) {
  const std::vector<TokenBatch> m = FixedShape(tokens, targets);
  return ComputeGradients(m, counted);
}

double Trainer::ComputeGradients(std::span<const TokenBatch> micro, size_t* counted) {
  const size_t n_micro = static_cast<size_t>(config_.grad_accum);
  NB_CHECK(micro.size() == n_micro, "step got {} micro-batches, expected {}", micro.size(), n_micro);
  size_t n = 0;
  for (const TokenBatch& b : micro)
    for (int32_t t : b.targets) n += t != kIgnoreIndex;
  *counted = n;
  if (n == 0) throw ConfigError(fmt::format("step {}: no target token counts in the loss", step_ + 1));
  std::memset(grads_.data(), 0, grads_.num_bytes());
  const float scale = 1.0f / static_cast<float>(n);
  double sum = 0;
  for (size_t k = 0; k < n_micro; ++k)  // a distinct dropout counter per micro-batch of each step
    sum += MicroBatch(micro[k], scale, true, static_cast<uint64_t>(step_) * n_micro + k, nullptr);
  return sum / static_cast<double>(n);
}

StepResult Trainer::Step(std::span<const int32_t> tokens, std::span<const int32_t> targets) {
  const std::vector<TokenBatch> m = FixedShape(tokens, targets);
  return Step(m);
}

StepResult Trainer::Step(std::span<const TokenBatch> micro) {
  StepResult r;
  r.step = step_ + 1;
  r.loss = ComputeGradients(micro, &r.tokens);
  if (!std::isfinite(r.loss))
    throw ConfigError(fmt::format("step {}: the loss is {}; stopping before the update (lower --lr, or check the "
                                  "data)",
                                  r.step, r.loss));
  std::span<float> all(F(grads_), index_.total());
  r.grad_norm = optim::ClipGradNorm(ctx_.num_threads(), std::span(&all, 1), config_.max_grad_norm);
  if (!std::isfinite(r.grad_norm))
    throw ConfigError(fmt::format("step {}: the gradient norm is {}; stopping before the update", r.step,
                                  r.grad_norm));
  r.lr = config_.lr * optim::LrMultiplier(config_.schedule, step_, config_.warmup_steps, config_.max_steps);
  if (step_ == 0) opt_->Zero();
  ++step_;
  opt_->Step(ctx_.num_threads(), F(params_), F(grads_), step_, r.lr, config_.weight_decay, config_.adam);
  return r;
}

double Trainer::Evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets) {
  const size_t per = config_.batch_size * config_.seq_len;
  double sum = 0;
  size_t n = 0;
  for (size_t k = 0; k + per <= tokens.size(); k += per) {
    size_t c = 0;
    sum += EvaluateBatch({tokens.subspan(k, per), targets.subspan(k, per), config_.batch_size, config_.seq_len}, &c);
    n += c;
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

double Trainer::EvaluateBatch(const TokenBatch& b, size_t* counted) {
  return MicroBatch(b, 1.0f, false, 0, counted);
}

void Trainer::Restore(int64_t step, const float* params) {
  NB_CHECK(step >= 0, "restore to step {}", step);
  std::memcpy(params_.data(), params, index_.total() * sizeof(float));
  if (step == 0) opt_->Zero();
  step_ = step;
}

double EvaluateLoss(const model::LlamaModel& model, std::span<const int32_t> tokens, std::span<const int32_t> targets,
                    size_t batch, size_t seq_len, ExecContext& ctx) {
  const size_t per = batch * seq_len;
  if (per == 0 || tokens.size() < per) return 0.0;
  const model::LlamaConfig& c = model.config();
  model::BatchActivations acts(ctx.allocator(), ctx.allocator(), c, model::Batch{batch, seq_len, 0}, ctx.num_threads());
  const model::LinearCall call{ctx.num_threads(), &ctx.allocator(), false, 0, model.quant_policy()};
  double sum = 0;
  size_t n = 0;
  for (size_t k = 0; k + per <= tokens.size() && k + per <= targets.size(); k += per) {
    model::ForwardBatch(model, tokens.subspan(k, per), acts, call);
    size_t counted = 0;
    sum += kernels::CrossEntropy(ctx.num_threads(), acts.logits(), targets.data() + k, nullptr, per,
                                 static_cast<size_t>(c.vocab_size), kIgnoreIndex, 1.0f, &counted);
    n += counted;
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

TrainMemory Trainer::memory() const {
  TrainMemory m;
  m.weights = weights_alloc_.peak_bytes();
  m.gradients = grads_alloc_.peak_bytes();
  m.optimizer = optim_alloc_.peak_bytes();
  m.optimizer_paged = opt_->paged_bytes();
  m.activations = acts_alloc_.peak_bytes();
  m.logits = logits_alloc_.peak_bytes();
  m.scratch = scratch_alloc_.peak_bytes();
  return m;
}

}  // namespace nibble::train
