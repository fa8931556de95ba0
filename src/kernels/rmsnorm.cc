// RmsNorm: Highway dispatch (one call per matrix) and the double scalar reference.
#include "kernels/rmsnorm.h"

#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/rmsnorm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "kernels/rmsnorm-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

void RmsNormRows(const float* x, const float* g, float* y, size_t T, size_t D, float eps) {
  for (size_t t = 0; t < T; ++t) RmsNormRow(x + t * D, g, y + t * D, D, eps);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(RmsNormRows);

void RmsNorm(const float* x, const float* g, float* y, size_t T, size_t D, float eps) noexcept {
  NB_DYNAMIC_DISPATCH(RmsNormRows)(x, g, y, T, D, eps);
}

void RmsNormRef(const float* x, const float* g, float* y, size_t T, size_t D, float eps) noexcept {
  for (size_t t = 0; t < T; ++t) {
    const float* xr = x + t * D;
    double ss = 0.0;
    for (size_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(D) + static_cast<double>(eps));
    for (size_t i = 0; i < D; ++i) y[t * D + i] = static_cast<float>(static_cast<double>(g[i]) * (xr[i] * inv));
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
