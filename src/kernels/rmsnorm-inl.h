// Per-target body of RmsNorm (kernels/rmsnorm.h): a vector FMA sum of squares, then a
// vector scale; the D % lanes tail in scalar.

#if defined(NIBBLE_KERNELS_RMSNORM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_RMSNORM_INL_H_
#undef NIBBLE_KERNELS_RMSNORM_INL_H_
#else
#define NIBBLE_KERNELS_RMSNORM_INL_H_
#endif

#include <cmath>
#include <cstddef>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One row: x, g, y: [D] f32 (y may equal x).
inline void RmsNormRow(const float* x, const float* HWY_RESTRICT g, float* y, size_t D, float eps) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto acc = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= D; i += L) {
    const auto v = hn::LoadU(d, x + i);
    acc = hn::MulAdd(v, v, acc);
  }
  float ss = hn::GetLane(hn::SumOfLanes(d, acc));
  for (size_t j = i; j < D; ++j) ss += x[j] * x[j];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
  const auto vinv = hn::Set(d, inv);
  i = 0;
  for (; i + L <= D; i += L) {
    hn::StoreU(hn::Mul(hn::LoadU(d, g + i), hn::Mul(hn::LoadU(d, x + i), vinv)), d, y + i);
  }
  for (; i < D; ++i) y[i] = g[i] * (x[i] * inv);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
