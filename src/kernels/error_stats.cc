// Error statistics: plain loops (the compiler vectorises the hot path); chunks
// of 64 Ki elements are reduced in a fixed order for reproducible sums.
#include "kernels/error_stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/convert.h"

namespace nibble::kernels {

void ErrorStats::Merge(const ErrorStats& o) {
  max_abs = std::max(max_abs, o.max_abs);
  sum_abs += o.sum_abs;
  max_rel = std::max(max_rel, o.max_rel);
  count += o.count;
  nonfinite += o.nonfinite;
}

ErrorStats ComputeErrorStats(const float* a, const float* b, size_t n) noexcept {
  ErrorStats s;
  for (size_t i = 0; i < n; ++i) {
    const float x = a[i], y = b[i];
    if (!std::isfinite(x)) continue;
    if (!std::isfinite(y)) {
      ++s.nonfinite;
      continue;
    }
    const double d = std::fabs(static_cast<double>(y) - static_cast<double>(x));
    s.max_abs = std::max(s.max_abs, d);
    s.sum_abs += d;
    const double ax = std::fabs(static_cast<double>(x));
    if (ax >= 1e-30) s.max_rel = std::max(s.max_rel, d / ax);
    ++s.count;
  }
  return s;
}

ErrorStats ComputeErrorStatsParallel(int num_threads, const float* a, const float* b, size_t n) noexcept {
  constexpr size_t kChunk = size_t{1} << 16;
  const size_t num_chunks = (n + kChunk - 1) / kChunk;
  if (num_chunks <= 1 || num_threads <= 1) return ComputeErrorStats(a, b, n);
  std::vector<ErrorStats> parts(num_chunks);
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (size_t c = 0; c < num_chunks; ++c) {
    const size_t begin = c * kChunk;
    parts[c] = ComputeErrorStats(a + begin, b + begin, std::min(kChunk, n - begin));
  }
  ErrorStats total;
  for (const auto& p : parts) total.Merge(p);
  return total;
}

ErrorStats ComputeRoundTripErrorParallel(int num_threads, DType dtype, const float* x, const void* encoded,
                                         size_t n) noexcept {
  constexpr size_t kChunk = size_t{1} << 16;
  const size_t num_chunks = (n + kChunk - 1) / kChunk;
  const size_t elem_bytes = GetDTypeInfo(dtype).block_bytes;  // dense types: one element per block
  std::vector<ErrorStats> parts(num_chunks);
#pragma omp parallel num_threads(num_threads)
  {
    std::vector<float> decoded(kChunk);
#pragma omp for schedule(static)
    for (size_t c = 0; c < num_chunks; ++c) {
      const size_t begin = c * kChunk;
      const size_t len = std::min(kChunk, n - begin);
      ConvertToF32(dtype, static_cast<const uint8_t*>(encoded) + begin * elem_bytes, decoded.data(), len);
      parts[c] = ComputeErrorStats(x + begin, decoded.data(), len);
    }
  }
  ErrorStats total;
  for (const auto& p : parts) total.Merge(p);
  return total;
}

}  // namespace nibble::kernels
