// Learning-rate schedules with transformers' names and formulas (get_scheduler, as a
// LambdaLR multiplier of the base rate; `step` counts optimizer steps already taken, so
// step 0 is the first update's rate), and gradient clipping by global norm as
// torch.nn.utils.clip_grad_norm_ does it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace nibble::optim {

enum class LrSchedule { kConstant, kConstantWithWarmup, kLinear, kCosine };

// "constant", "constant_with_warmup", "linear", "cosine"; ConfigError naming the value and
// the choices otherwise.
LrSchedule ParseLrSchedule(std::string_view name);
std::string_view LrScheduleName(LrSchedule s);

// The multiplier of the base rate for the update after `step` updates, transformers'
// lambdas (optimization.py): warmup step/max(1, warmup); linear decays to 0 at
// total_steps; cosine is 0.5·(1 + cos(π·progress)) (num_cycles 0.5), floored at 0.
double LrMultiplier(LrSchedule s, int64_t step, int64_t warmup_steps, int64_t total_steps);

// Scales the gradients (one flat range per tensor) so their global L2 norm is at most
// max_norm: coef = max_norm / (norm + 1e-6) in f32, applied when < 1 or NaN (torch's
// clip_grad_norm_: a NaN norm makes every gradient NaN, as there). Returns the norm before
// clipping (squares summed in f32 within chunks of 4096 on Highway vectors, the chunk sums
// in double, in order, so any thread count gives the same bits; rounded to f32 for the
// factor). max_norm <= 0: no clip. `num_threads` splits the chunks (optim/grad_norm.cc).
double ClipGradNorm(int num_threads, std::span<const std::span<float>> grads, double max_norm) noexcept;
// Scalar oracle: every square summed in double.
double ClipGradNormRef(std::span<const std::span<float>> grads, double max_norm) noexcept;

}  // namespace nibble::optim
