// Memory-bandwidth probe: per-target Highway read loop, dynamic dispatch, OpenMP threads.
#include "probes.h"

#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "probes.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sums n u64 (n a multiple of 4 vectors) with 4 independent accumulators, so the loop
// is bound by loads, not by the add latency.
uint64_t SumU64(const uint64_t* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<uint64_t> d;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  for (size_t i = 0; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::LoadU(d, p + i));
    a1 = hn::Add(a1, hn::LoadU(d, p + i + N));
    a2 = hn::Add(a2, hn::LoadU(d, p + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(d, p + i + 3 * N));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

}  // namespace nibble::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::bench {
namespace {
HWY_EXPORT(SumU64);
double g_probe[3] = {0, 0, 0};  // bytes/s by thread count; written once in main
}  // namespace

double MeasureReadBandwidth(int num_threads, size_t num_bytes, int passes) {
  const size_t n = num_bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i;  // touch every page: no shared zero page
  const size_t per_thread = n / num_threads / 64 * 64;
  double best = 0;
  volatile uint64_t sink = 0;
  for (int pass = 0; pass < passes; ++pass) {
    uint64_t total = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(num_threads) reduction(+ : total)
    for (int t = 0; t < num_threads; ++t)
      total += HWY_DYNAMIC_DISPATCH(SumU64)(buf.data() + static_cast<size_t>(t) * per_thread, per_thread);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    const double bw = static_cast<double>(per_thread * num_threads * sizeof(uint64_t)) / s;
    if (bw > best) best = bw;
  }
  return best;
}

double ProbeBandwidth(int num_threads) { return num_threads >= 1 && num_threads <= 2 ? g_probe[num_threads] : 0; }
void SetProbeBandwidth(int num_threads, double bytes_per_s) {
  if (num_threads >= 1 && num_threads <= 2) g_probe[num_threads] = bytes_per_s;
}

}  // namespace nibble::bench
#endif  // HWY_ONCE
