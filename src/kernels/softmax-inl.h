// Per-target body of Softmax (kernels/softmax.h): vector max, Highway's Exp (1 ulp, valid
// for inputs <= 104; here all inputs are <= 0), vector sum and scale; the tail through the same Exp.

#if defined(NIBBLE_KERNELS_SOFTMAX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_SOFTMAX_INL_H_
#undef NIBBLE_KERNELS_SOFTMAX_INL_H_
#else
#define NIBBLE_KERNELS_SOFTMAX_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x: [n] f32, in place.
inline void SoftmaxRow(float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  float mx = x[0];
  size_t i = 0;
  if (n >= L) {
    auto vmax = hn::LoadU(d, x);
    for (i = L; i + L <= n; i += L) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  }
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  const auto vmx = hn::Set(d, mx);
  auto vsum = hn::Zero(d);
  for (i = 0; i + L <= n; i += L) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vmx));
    hn::StoreU(e, d, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  if (i < n) {
    // The tail goes through the same vector Exp on a copy padded with mx (exp(0) = 1 in
    // the unused lanes, which are neither summed nor stored).
    HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
    std::fill(buf, buf + HWY_MAX_BYTES / sizeof(float), mx);
    std::copy(x + i, x + n, buf);
    hn::Store(hn::Exp(d, hn::Sub(hn::Load(d, buf), vmx)), d, buf);
    for (size_t j = 0; j < n - i; ++j) sum += (x[i + j] = buf[j]);
  }
  const float inv = 1.0f / sum;
  const auto vinv = hn::Set(d, inv);
  for (i = 0; i + L <= n; i += L) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vinv), d, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
