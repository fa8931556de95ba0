// CrossEntropy: per row a vector max, a vector sum of exp (Highway Exp, 1 ulp) with the
// exps kept in dlogits, then one scaling pass; the double scalar reference.
#include "kernels/cross_entropy.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cross_entropy.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One row; returns its loss. dl (may be null, may equal x) gets scale·(p − onehot).
double CrossEntropyRow(const float* x, int32_t target, float* dl, size_t V, float scale) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto vmax = hn::Set(d, -std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + L <= V; i += L) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (size_t j = i; j < V; ++j) m = std::max(m, x[j]);
  const float x_target = x[target];
  const auto vm = hn::Set(d, m);
  auto vsum = hn::Zero(d);
  i = 0;
  for (; i + L <= V; i += L) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    vsum = hn::Add(vsum, e);
    if (dl != nullptr) hn::StoreU(e, d, dl + i);
  }
  double sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (size_t j = i; j < V; ++j) {
    const float e = std::exp(x[j] - m);
    sum += e;
    if (dl != nullptr) dl[j] = e;
  }
  if (dl != nullptr) {
    const auto k = hn::Set(d, static_cast<float>(static_cast<double>(scale) / sum));
    i = 0;
    for (; i + L <= V; i += L) hn::StoreU(hn::Mul(hn::LoadU(d, dl + i), k), d, dl + i);
    const float kk = static_cast<float>(static_cast<double>(scale) / sum);
    for (; i < V; ++i) dl[i] *= kk;
    dl[target] -= scale;
  }
  return static_cast<double>(m) + std::log(sum) - static_cast<double>(x_target);
}

// Rows are split into at most kChunks contiguous chunks whose sums are added in chunk
// order, so the loss is the same bits for every thread count.
constexpr size_t kChunks = 64;

double CrossEntropyTarget(int num_threads, const float* logits, const int32_t* targets, float* dlogits, size_t T,
                          size_t V, int32_t ignore_index, float scale, size_t* counted) {
  double part[kChunks] = {};
  size_t count[kChunks] = {};
  const size_t chunks = std::min(T, kChunks);
  const int threads = num_threads < 1 ? 1 : num_threads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && chunks > 1)
  for (size_t c = 0; c < chunks; ++c) {
    for (size_t t = c * T / chunks; t < (c + 1) * T / chunks; ++t) {
      float* dl = dlogits != nullptr ? dlogits + t * V : nullptr;
      if (targets[t] == ignore_index) {
        if (dl != nullptr) std::fill(dl, dl + V, 0.0f);
        continue;
      }
      part[c] += CrossEntropyRow(logits + t * V, targets[t], dl, V, scale);
      ++count[c];
    }
  }
  double total = 0;
  size_t n = 0;
  for (size_t c = 0; c < chunks; ++c) {
    total += part[c];
    n += count[c];
  }
  *counted = n;
  return total;
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(CrossEntropyTarget);

double CrossEntropy(int num_threads, const float* logits, const int32_t* targets, float* dlogits, size_t T, size_t V,
                    int32_t ignore_index, float scale, size_t* counted) noexcept {
  return NB_DYNAMIC_DISPATCH(CrossEntropyTarget)(num_threads, logits, targets, dlogits, T, V, ignore_index, scale,
                                                 counted);
}

double CrossEntropyRef(const float* logits, const int32_t* targets, float* dlogits, size_t T, size_t V,
                       int32_t ignore_index, float scale, size_t* counted) noexcept {
  double total = 0;
  size_t n = 0;
  for (size_t t = 0; t < T; ++t) {
    const float* x = logits + t * V;
    float* dl = dlogits != nullptr ? dlogits + t * V : nullptr;
    if (targets[t] == ignore_index) {
      if (dl != nullptr)
        for (size_t j = 0; j < V; ++j) dl[j] = 0.0f;
      continue;
    }
    double m = -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < V; ++j) m = std::max(m, static_cast<double>(x[j]));
    double sum = 0;
    for (size_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(x[j]) - m);
    const double x_target = x[targets[t]];
    total += m + std::log(sum) - x_target;
    ++n;
    if (dl != nullptr) {
      for (size_t j = 0; j < V; ++j) {
        const double p = std::exp(static_cast<double>(x[j]) - m) / sum;
        dl[j] = static_cast<float>(static_cast<double>(scale) * (p - (static_cast<int32_t>(j) == targets[t] ? 1.0 : 0.0)));
      }
    }
  }
  *counted = n;
  return total;
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
