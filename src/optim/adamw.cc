// AdamWStep: torch's single-tensor order of operations in f32, on Highway vectors (the
// tail through the same vector code on a padded copy, so an element's result does not
// depend on where it sits), split over `num_threads`; and the double reference.
#include "optim/adamw.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "optim/adamw.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::optim::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

struct Consts {
  float decay, w1, b2, one_minus_b2, bc2_sqrt, eps, neg_step_size;
};

// One vector of the update (see adamw.h for the order). lerp as torch's vectorized lerp:
// one fused multiply-add (MulAdd is fused on every target nibble builds but the scalar one).
template <class D, class V>
HWY_INLINE void Update(D d, const Consts& k, V& p, V g, V& m, V& v) {
  p = hn::Mul(p, hn::Set(d, k.decay));
  const auto w = hn::Set(d, k.w1);
  const auto diff = hn::Sub(g, m);
  m = k.w1 < 0.5f ? hn::MulAdd(w, diff, m) : hn::MulAdd(hn::Sub(w, hn::Set(d, 1.0f)), diff, g);
  v = hn::Add(hn::Mul(v, hn::Set(d, k.b2)), hn::Mul(hn::Mul(hn::Set(d, k.one_minus_b2), g), g));
  const auto den = hn::Add(hn::Div(hn::Sqrt(v), hn::Set(d, k.bc2_sqrt)), hn::Set(d, k.eps));
  p = hn::Add(p, hn::Div(hn::Mul(hn::Set(d, k.neg_step_size), m), den));
}

void AdamWSpan(float* p, const float* g, float* m, float* v, size_t n, const Consts& k) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    auto vp = hn::LoadU(d, p + i), vm = hn::LoadU(d, m + i), vv = hn::LoadU(d, v + i);
    Update(d, k, vp, hn::LoadU(d, g + i), vm, vv);
    hn::StoreU(vp, d, p + i);
    hn::StoreU(vm, d, m + i);
    hn::StoreU(vv, d, v + i);
  }
  if (i < n) {
    HWY_ALIGN float bp[HWY_MAX_BYTES / sizeof(float)] = {}, bg[HWY_MAX_BYTES / sizeof(float)] = {};
    HWY_ALIGN float bm[HWY_MAX_BYTES / sizeof(float)] = {}, bv[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(p + i, p + n, bp);
    std::copy(g + i, g + n, bg);
    std::copy(m + i, m + n, bm);
    std::copy(v + i, v + n, bv);
    auto vp = hn::Load(d, bp), vm = hn::Load(d, bm), vv = hn::Load(d, bv);
    Update(d, k, vp, hn::Load(d, bg), vm, vv);
    hn::Store(vp, d, bp);
    hn::Store(vm, d, bm);
    hn::Store(vv, d, bv);
    std::copy(bp, bp + (n - i), p + i);
    std::copy(bm, bm + (n - i), m + i);
    std::copy(bv, bv + (n - i), v + i);
  }
}

void AdamWTarget(int threads, float* p, const float* g, float* m, float* v, size_t n, float decay, float w1, float b2,
                 float one_minus_b2, float bc2_sqrt, float eps, float neg_step_size) {
  const Consts k = {decay, w1, b2, one_minus_b2, bc2_sqrt, eps, neg_step_size};
  // Chunks of 64 Ki elements (a multiple of every vector length) over the threads; below
  // 256 Ki elements one thread is faster than waking a team.
  constexpr size_t kChunk = size_t{1} << 16;
  const long chunks = static_cast<long>((n + kChunk - 1) / kChunk);
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= 4 * kChunk && threads > 1)
  for (long c = 0; c < chunks; ++c) {
    const size_t b = static_cast<size_t>(c) * kChunk, e = std::min(n, b + kChunk);
    AdamWSpan(p + b, g + b, m + b, v + b, e - b, k);
  }
}

}  // namespace nibble::optim::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::optim {

HWY_EXPORT(AdamWTarget);

void AdamWStep(int num_threads, float* p, const float* g, float* m, float* v, size_t n, int64_t step, double lr,
               double weight_decay, const AdamWConfig& c) noexcept {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
  NB_DYNAMIC_DISPATCH(AdamWTarget)(num_threads < 1 ? 1 : num_threads, p, g, m, v, n,
                                   static_cast<float>(1.0 - lr * weight_decay),
                                   static_cast<float>(1.0 - c.beta1), static_cast<float>(c.beta2),
                                   static_cast<float>(1.0 - c.beta2), static_cast<float>(std::sqrt(bc2)),
                                   static_cast<float>(c.eps), static_cast<float>(-(lr / bc1)));
}

void AdamWStepRef(float* p, const float* g, float* m, float* v, size_t n, int64_t step, double lr,
                  double weight_decay, const AdamWConfig& c) noexcept {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
  for (size_t i = 0; i < n; ++i) {
    const double gi = g[i];
    const double pi = static_cast<double>(p[i]) * (1.0 - lr * weight_decay);
    const double mi = c.beta1 * m[i] + (1.0 - c.beta1) * gi;
    const double vi = c.beta2 * v[i] + (1.0 - c.beta2) * gi * gi;
    const double den = std::sqrt(vi / bc2) + c.eps;
    p[i] = static_cast<float>(pi - lr / bc1 * mi / den);
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

}  // namespace nibble::optim
#endif  // HWY_ONCE
