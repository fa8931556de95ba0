// LR schedules (transformers' formulas) and global-norm clipping (torch's).
#include "optim/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "nibble/error.h"

namespace nibble::optim {

LrSchedule ParseLrSchedule(std::string_view name) {
  for (LrSchedule s : {LrSchedule::kConstant, LrSchedule::kConstantWithWarmup, LrSchedule::kLinear, LrSchedule::kCosine})
    if (LrScheduleName(s) == name) return s;
  throw ConfigError(fmt::format("lr scheduler \"{}\": expected constant, constant_with_warmup, linear or cosine", name));
}

std::string_view LrScheduleName(LrSchedule s) {
  switch (s) {
    case LrSchedule::kConstant:
      return "constant";
    case LrSchedule::kConstantWithWarmup:
      return "constant_with_warmup";
    case LrSchedule::kLinear:
      return "linear";
    case LrSchedule::kCosine:
      return "cosine";
  }
  return "?";
}

double LrMultiplier(LrSchedule s, int64_t step, int64_t warmup, int64_t total) {
  const double st = static_cast<double>(step);
  if (s == LrSchedule::kConstant) return 1.0;
  if (step < warmup) return st / static_cast<double>(std::max<int64_t>(1, warmup));
  switch (s) {
    case LrSchedule::kConstantWithWarmup:
      return 1.0;
    case LrSchedule::kLinear:
      return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
    case LrSchedule::kCosine: {
      const double progress =
          static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
    }
    default:
      return 1.0;
  }
}

}  // namespace nibble::optim
