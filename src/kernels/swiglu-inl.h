// Per-target body of SwiGlu (kernels/swiglu.h): Highway Exp (1 ulp) and a division per
// lane; the n % lanes tail through the same vector code on a padded copy.

#if defined(NIBBLE_KERNELS_SWIGLU_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_SWIGLU_INL_H_
#undef NIBBLE_KERNELS_SWIGLU_INL_H_
#else
#define NIBBLE_KERNELS_SWIGLU_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Largest argument passed to exp: e^88 ~ 1.65e38 stays finite in f32 (and inside
// Highway Exp's valid range, <= 104).
inline constexpr float kSwiGluExpClamp = 88.0f;

inline void SwiGluSpan(const float* gate, const float* up, float* out, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  const auto clamp = hn::Set(d, kSwiGluExpClamp);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto g = hn::LoadU(d, gate + i);
    const auto e = hn::Exp(d, hn::Min(hn::Neg(g), clamp));
    const auto silu = hn::Div(g, hn::Add(one, e));
    hn::StoreU(hn::Mul(silu, hn::LoadU(d, up + i)), d, out + i);
  }
  if (i < n) {
    // The tail goes through the same vector code via zero-padded copies, so an element's
    // result does not depend on where it sits in the span (batched == token-by-token).
    HWY_ALIGN float g_buf[HWY_MAX_BYTES / sizeof(float)] = {};
    HWY_ALIGN float u_buf[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(gate + i, gate + n, g_buf);
    std::copy(up + i, up + n, u_buf);
    const auto g = hn::Load(d, g_buf);
    const auto silu = hn::Div(g, hn::Add(one, hn::Exp(d, hn::Min(hn::Neg(g), clamp))));
    hn::Store(hn::Mul(silu, hn::Load(d, u_buf)), d, g_buf);
    std::copy(g_buf, g_buf + (n - i), out + i);
  }
}

// One vector of the backward: s = 1/(1 + e^-g) with the forward's clamp.
template <class D, class V>
inline void SwiGluBackwardVec(D d, V g, V u, V dout, V& dgate, V& dup) {
  const auto one = hn::Set(d, 1.0f);
  const auto s = hn::Div(one, hn::Add(one, hn::Exp(d, hn::Min(hn::Neg(g), hn::Set(d, kSwiGluExpClamp)))));
  const auto ds = hn::Mul(dout, s);
  dup = hn::Mul(ds, g);
  // 1 + g·(1 − s)
  const auto k = hn::MulAdd(g, hn::Sub(one, s), one);
  dgate = hn::Mul(hn::Mul(ds, u), k);
}

inline void SwiGluBackwardSpan(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                               size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    hn::Vec<decltype(d)> dg, du;
    SwiGluBackwardVec(d, hn::LoadU(d, gate + i), hn::LoadU(d, up + i), hn::LoadU(d, dout + i), dg, du);
    hn::StoreU(dg, d, dgate + i);
    hn::StoreU(du, d, dup + i);
  }
  if (i < n) {
    HWY_ALIGN float g_buf[HWY_MAX_BYTES / sizeof(float)] = {};
    HWY_ALIGN float u_buf[HWY_MAX_BYTES / sizeof(float)] = {};
    HWY_ALIGN float o_buf[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(gate + i, gate + n, g_buf);
    std::copy(up + i, up + n, u_buf);
    std::copy(dout + i, dout + n, o_buf);
    hn::Vec<decltype(d)> dg, du;
    SwiGluBackwardVec(d, hn::Load(d, g_buf), hn::Load(d, u_buf), hn::Load(d, o_buf), dg, du);
    hn::Store(dg, d, g_buf);
    hn::Store(du, d, u_buf);
    std::copy(g_buf, g_buf + (n - i), dgate + i);
    std::copy(u_buf, u_buf + (n - i), dup + i);
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
