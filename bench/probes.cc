// Memory-bandwidth and compute-peak probes: per-target Highway loops (read, FMA chains),
// a vdpbf16ps loop with its own target attribute, dynamic dispatch, OpenMP threads.
#include "probes.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/matmul_bf16.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "probes.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
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

// `iters` rounds of 12 independent MulAdd chains (12 > latency 4 × 2 FMA pipes, so the
// pipes stay full); returns the FLOP done and stores a value that depends on every chain.
double FmaChains(size_t iters, float* sink) {
  const hn::ScalableTag<float> d;
  const auto m = hn::Set(d, 0.9999999f), c = hn::Set(d, 1e-7f);
  // Distinct start values: identical chains would be merged into one by the compiler.
  auto a0 = hn::Set(d, 1.0f), a1 = hn::Set(d, 1.01f), a2 = hn::Set(d, 1.02f), a3 = hn::Set(d, 1.03f);
  auto a4 = hn::Set(d, 1.04f), a5 = hn::Set(d, 1.05f), a6 = hn::Set(d, 1.06f), a7 = hn::Set(d, 1.07f);
  auto a8 = hn::Set(d, 1.08f), a9 = hn::Set(d, 1.09f), a10 = hn::Set(d, 1.10f), a11 = hn::Set(d, 1.11f);
  for (size_t i = 0; i < iters; ++i) {
    a0 = hn::MulAdd(a0, m, c), a1 = hn::MulAdd(a1, m, c), a2 = hn::MulAdd(a2, m, c);
    a3 = hn::MulAdd(a3, m, c), a4 = hn::MulAdd(a4, m, c), a5 = hn::MulAdd(a5, m, c);
    a6 = hn::MulAdd(a6, m, c), a7 = hn::MulAdd(a7, m, c), a8 = hn::MulAdd(a8, m, c);
    a9 = hn::MulAdd(a9, m, c), a10 = hn::MulAdd(a10, m, c), a11 = hn::MulAdd(a11, m, c);
  }
  const auto s = hn::Add(hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7))),
                         hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  *sink = hn::GetLane(hn::SumOfLanes(d, s));
  return static_cast<double>(iters) * 12.0 * static_cast<double>(hn::Lanes(d)) * 2.0;
}

}  // namespace nibble::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::bench {
namespace {
HWY_EXPORT(SumU64);
HWY_EXPORT(FmaChains);
double g_probe[3] = {0, 0, 0};  // bytes/s by thread count; written once in main

// Rounds per pass and thread: 2^24 × 12 instructions ≈ 60 ms at one zmm op per cycle.
constexpr size_t kPeakIters = size_t{1} << 24;
constexpr int kPeakPasses = 5;

#if defined(__x86_64__)
// 12 chains of vdpbf16ps zmm (64 FLOP each); called only after HasAvx512Bf16().
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) double Bf16DotChains(size_t iters, float* sink) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80);  // bf16 1.0
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3380);  // bf16 2^-24: sums stay finite
  // Distinct start values: identical chains would be merged into one by the compiler.
  float start[27];  // chain j starts at lanes start[j..j+15]: all chains differ
  for (int j = 0; j < 27; ++j) start[j] = static_cast<float>(j);
  __m512 c0 = _mm512_loadu_ps(start), c1 = _mm512_loadu_ps(start + 1), c2 = _mm512_loadu_ps(start + 2);
  __m512 c3 = _mm512_loadu_ps(start + 3), c4 = _mm512_loadu_ps(start + 4), c5 = _mm512_loadu_ps(start + 5);
  __m512 c6 = _mm512_loadu_ps(start + 6), c7 = _mm512_loadu_ps(start + 7), c8 = _mm512_loadu_ps(start + 8);
  __m512 c9 = _mm512_loadu_ps(start + 9), c10 = _mm512_loadu_ps(start + 10), c11 = _mm512_loadu_ps(start + 11);
  for (size_t i = 0; i < iters; ++i) {
    c0 = _mm512_dpbf16_ps(c0, a, b), c1 = _mm512_dpbf16_ps(c1, a, b), c2 = _mm512_dpbf16_ps(c2, a, b);
    c3 = _mm512_dpbf16_ps(c3, a, b), c4 = _mm512_dpbf16_ps(c4, a, b), c5 = _mm512_dpbf16_ps(c5, a, b);
    c6 = _mm512_dpbf16_ps(c6, a, b), c7 = _mm512_dpbf16_ps(c7, a, b), c8 = _mm512_dpbf16_ps(c8, a, b);
    c9 = _mm512_dpbf16_ps(c9, a, b), c10 = _mm512_dpbf16_ps(c10, a, b), c11 = _mm512_dpbf16_ps(c11, a, b);
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                                               _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7))),
                                 _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
  float lanes[16];  // summed by hand: g++ 12's _mm512_reduce_add_ps trips -Wuninitialized
  _mm512_storeu_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  *sink = total;
  return static_cast<double>(iters) * 12.0 * 64.0;
}
#endif

// Best FLOP/s of kPeakPasses passes of `chains` on every thread at once.
template <class Chains>
double MeasurePeak(int num_threads, const Chains& chains) {
  double best = 0;
  volatile float sink = 0;
  for (int pass = 0; pass < kPeakPasses; ++pass) {
    double flops = 0;
    float s = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(num_threads) reduction(+ : flops, s)
    for (int t = 0; t < num_threads; ++t) {
      float one = 0;
      flops += chains(kPeakIters, &one);
      s += one;
    }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + s;
    if (flops / sec > best) best = flops / sec;
  }
  return best;
}
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
      total += NB_DYNAMIC_DISPATCH(SumU64)(buf.data() + static_cast<size_t>(t) * per_thread, per_thread);
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

double ProbeFmaPeak(int num_threads) {
  const auto chains = [](size_t iters, float* sink) { return NB_DYNAMIC_DISPATCH(FmaChains)(iters, sink); };
  static const double peak[3] = {0, MeasurePeak(1, chains), MeasurePeak(2, chains)};
  return num_threads >= 1 && num_threads <= 2 ? peak[num_threads] : 0;
}

double ProbeBf16DotPeak(int num_threads) {
#if defined(__x86_64__)
  static const double peak[3] = {0, kernels::HasAvx512Bf16() ? MeasurePeak(1, Bf16DotChains) : 0,
                                 kernels::HasAvx512Bf16() ? MeasurePeak(2, Bf16DotChains) : 0};
  return num_threads >= 1 && num_threads <= 2 ? peak[num_threads] : 0;
#else
  return 0;
#endif
}

}  // namespace nibble::bench
#endif  // HWY_ONCE
