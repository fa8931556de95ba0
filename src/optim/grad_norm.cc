// ClipGradNorm: the sum of squares on Highway vectors in fixed chunks (f32 within a chunk,
// the chunk sums added in double in chunk order, so the result does not depend on the
// thread count), the scaling pass split over threads; and the double reference.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "optim/schedule.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "optim/grad_norm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::optim::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Σ x² over one chunk: four f32 vector accumulators, scalar tail, in double at the end.
double ChunkSquares(const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    const auto v0 = hn::LoadU(d, x + i), v1 = hn::LoadU(d, x + i + L);
    const auto v2 = hn::LoadU(d, x + i + 2 * L), v3 = hn::LoadU(d, x + i + 3 * L);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
    a2 = hn::MulAdd(v2, v2, a2);
    a3 = hn::MulAdd(v3, v3, a3);
  }
  double s = static_cast<double>(hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)))));
  for (; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

void ScaleSpan(float* x, size_t n, float c) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto vc = hn::Set(d, c);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vc), d, x + i);
  for (; i < n; ++i) x[i] *= c;
}

}  // namespace nibble::optim::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::optim {

HWY_EXPORT(ChunkSquares);
HWY_EXPORT(ScaleSpan);

namespace {

// f32 sums of 4096 squares stay within ~4096·ε relative; the double total over chunks.
constexpr size_t kChunk = 4096;

}  // namespace

double ClipGradNorm(int num_threads, std::span<const std::span<float>> grads, double max_norm) noexcept {
  std::vector<std::pair<float*, size_t>> chunks;
  for (const std::span<float> g : grads)
    for (size_t b = 0; b < g.size(); b += kChunk) chunks.emplace_back(g.data() + b, std::min(kChunk, g.size() - b));
  std::vector<double> sums(chunks.size());
  const long nc = static_cast<long>(chunks.size());
  const bool parallel = num_threads > 1 && nc >= 64;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (parallel)
  for (long c = 0; c < nc; ++c)
    sums[static_cast<size_t>(c)] = NB_DYNAMIC_DISPATCH(ChunkSquares)(chunks[static_cast<size_t>(c)].first,
                                                                    chunks[static_cast<size_t>(c)].second);
  double ss = 0.0;
  for (double s : sums) ss += s;
  const double norm = std::sqrt(ss);
  if (max_norm > 0) {
    // torch: clip_coef = max_norm / (total_norm + 1e-6) on f32 tensors, clamped at 1. A NaN
    // or infinite norm gives a NaN or 0 factor there too, and the gradients follow it.
    const float coef = static_cast<float>(max_norm) / (static_cast<float>(norm) + 1e-6f);
    if (!(coef >= 1.0f)) {
#pragma omp parallel for num_threads(num_threads) schedule(static) if (parallel)
      for (long c = 0; c < nc; ++c)
        NB_DYNAMIC_DISPATCH(ScaleSpan)(chunks[static_cast<size_t>(c)].first, chunks[static_cast<size_t>(c)].second,
                                       coef);
    }
  }
  return norm;
}

double ClipGradNormRef(std::span<const std::span<float>> grads, double max_norm) noexcept {
  double ss = 0.0;
  for (const std::span<float> g : grads)
    for (float x : g) ss += static_cast<double>(x) * x;
  const double norm = std::sqrt(ss);
  if (max_norm > 0) {
    const float coef = static_cast<float>(max_norm) / (static_cast<float>(norm) + 1e-6f);
    if (!(coef >= 1.0f)) {
      for (const std::span<float> g : grads)
        for (float& x : g) x *= coef;
    }
  }
  return norm;
}

}  // namespace nibble::optim
#endif  // HWY_ONCE
