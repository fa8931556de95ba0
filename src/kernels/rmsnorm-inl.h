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

// 1 / sqrt(mean(x²) + eps) of one row: a vector FMA sum of squares, the tail in scalar.
// The forward and the backward both call it, so the backward sees the forward's r.
inline float RowInvRms(const float* x, size_t D, float eps) {
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
  return 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
}

// One row: x, g, y: [D] f32 (y may equal x).
inline void RmsNormRow(const float* x, const float* HWY_RESTRICT g, float* y, size_t D, float eps) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const float inv = RowInvRms(x, D, eps);
  const auto vinv = hn::Set(d, inv);
  size_t i = 0;
  for (; i + L <= D; i += L) {
    hn::StoreU(hn::Mul(hn::LoadU(d, g + i), hn::Mul(hn::LoadU(d, x + i), vinv)), d, y + i);
  }
  for (; i < D; ++i) y[i] = g[i] * (x[i] * inv);
}

// One row of the backward (kernels/rmsnorm.h): three passes, r (RowInvRms), then
// Σ dy·g·x with dg accumulated, then dx (dx may equal dy: each lane is read before written).
inline void RmsNormBackwardRow(const float* HWY_RESTRICT x, const float* HWY_RESTRICT g, const float* dy, float* dx,
                               float* HWY_RESTRICT dg, size_t D, float eps) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const float r = RowInvRms(x, D, eps);
  const auto vr = hn::Set(d, r);
  auto dot = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= D; i += L) {
    const auto vdy = hn::LoadU(d, dy + i);
    const auto vx = hn::LoadU(d, x + i);
    dot = hn::MulAdd(hn::Mul(vdy, hn::LoadU(d, g + i)), vx, dot);
    hn::StoreU(hn::MulAdd(hn::Mul(vdy, vx), vr, hn::LoadU(d, dg + i)), d, dg + i);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, dot));
  for (size_t j = i; j < D; ++j) {
    s += dy[j] * g[j] * x[j];
    dg[j] += dy[j] * x[j] * r;
  }
  const float c = r * r * r / static_cast<float>(D) * s;
  const auto vc = hn::Set(d, c);
  i = 0;
  for (; i + L <= D; i += L) {
    const auto t = hn::Mul(hn::Mul(vr, hn::LoadU(d, g + i)), hn::LoadU(d, dy + i));
    hn::StoreU(hn::NegMulAdd(vc, hn::LoadU(d, x + i), t), d, dx + i);
  }
  for (; i < D; ++i) dx[i] = r * g[i] * dy[i] - c * x[i];
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
