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

void RmsNormBackwardRows(const float* x, const float* g, const float* dy, float* dx, float* dg, size_t T, size_t D,
                         float eps) {
  for (size_t t = 0; t < T; ++t) RmsNormBackwardRow(x + t * D, g, dy + t * D, dx + t * D, dg, D, eps);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(RmsNormRows);
HWY_EXPORT(RmsNormBackwardRows);

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

void RmsNormBackward(const float* x, const float* g, const float* dy, float* dx, float* dg, size_t T, size_t D,
                     float eps) noexcept {
  NB_DYNAMIC_DISPATCH(RmsNormBackwardRows)(x, g, dy, dx, dg, T, D, eps);
}

void RmsNormBackwardRef(const float* x, const float* g, const float* dy, float* dx, float* dg, size_t T, size_t D,
                        float eps) noexcept {
  for (size_t t = 0; t < T; ++t) {
    const float* xr = x + t * D;
    const float* dyr = dy + t * D;
    double ss = 0.0, s = 0.0;
    for (size_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(D) + static_cast<double>(eps));
    for (size_t i = 0; i < D; ++i) s += static_cast<double>(dyr[i]) * g[i] * xr[i];
    const double c = r * r * r / static_cast<double>(D) * s;
    for (size_t i = 0; i < D; ++i) {
      dg[i] = static_cast<float>(dg[i] + static_cast<double>(dyr[i]) * xr[i] * r);
      dx[t * D + i] = static_cast<float>(r * g[i] * dyr[i] - c * xr[i]);
    }
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
