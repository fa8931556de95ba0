// Causal GQA attention (kernels/attention.h) on SmolLM2-135M shapes (H = 9, KV = 3, Dh = 64):
// a 512-token prompt from position 0 and one decode token at position 511, 1 and 2 threads.
// Reports GFLOP/s (4·Dh·H per q·k pair: the score dot and the weighted sum) and frac_fma.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench_util.h"
#include "hwy/aligned_allocator.h"
#include "kernels/attention.h"

namespace nibble::bench {
namespace {

constexpr size_t kHeads = 9, kKvHeads = 3, kHeadDim = 64;  // SmolLM2-135M

// Args: T new tokens, start_pos, threads. q, k, v in [-1, 1) from the LCG, every page written.
void BM_CausalAttention(benchmark::State& state) {
  const size_t T = static_cast<size_t>(state.range(0)), start_pos = static_cast<size_t>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  const size_t P = start_pos + T;
  auto q = hwy::AllocateAligned<float>(T * kHeads * kHeadDim);
  auto k = hwy::AllocateAligned<float>(P * kKvHeads * kHeadDim);
  auto v = hwy::AllocateAligned<float>(P * kKvHeads * kHeadDim);
  auto out = hwy::AllocateAligned<float>(T * kHeads * kHeadDim);
  std::vector<float> scratch(static_cast<size_t>(threads) * P);
  Lcg lcg;
  for (size_t i = 0; i < T * kHeads * kHeadDim; ++i) q[i] = lcg.Next();
  for (size_t i = 0; i < P * kKvHeads * kHeadDim; ++i) k[i] = lcg.Next();
  for (size_t i = 0; i < P * kKvHeads * kHeadDim; ++i) v[i] = lcg.Next();
  ProbeFmaPeak(threads);  // measured once, outside any timing
  for (auto _ : state) {
    kernels::CausalAttention(threads, q.get(), k.get(), v.get(), out.get(), T, start_pos, kHeads, kKvHeads, kHeadDim,
                             scratch.data());
    benchmark::ClobberMemory();
  }
  // Query t sees start_pos + t + 1 positions.
  const double pairs = static_cast<double>(T) * static_cast<double>(start_pos) + static_cast<double>(T * (T + 1) / 2);
  const double flops = 4.0 * kHeadDim * kHeads * pairs * static_cast<double>(state.iterations());
  state.counters["GFLOPs"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["frac_fma"] = benchmark::Counter(flops / ProbeFmaPeak(threads), benchmark::Counter::kIsRate);
}

// The backward (kernels/attention.h CausalAttentionBackward) of a training window of T
// tokens from position 0, per layer. Args: T, threads. FLOPs counted as the forward's
// (4·Dh·H per visible pair) times two: the probabilities recomputed plus dP, dS, dQ, dK,
// dV over the visible pairs only, so a kernel that computes the masked half too shows it
// as a lower rate.
void BM_CausalAttentionBackward(benchmark::State& state) {
  const size_t T = static_cast<size_t>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const size_t qn = T * kHeads * kHeadDim, kn = T * kKvHeads * kHeadDim;
  std::vector<float> q(qn), k(kn), v(kn), out(qn), dout(qn), dq(qn), dk(kn), dv(kn);
  std::vector<float> scratch(static_cast<size_t>(threads) * T + kernels::CausalAttentionBackwardScratch(T, 0, kHeads, kKvHeads, kHeadDim));
  Lcg lcg;
  for (auto* a : {&q, &k, &v, &dout})
    for (float& x : *a) x = lcg.Next();
  kernels::CausalAttention(threads, q.data(), k.data(), v.data(), out.data(), T, 0, kHeads, kKvHeads, kHeadDim,
                           scratch.data());
  ProbeFmaPeak(threads);
  for (auto _ : state) {
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    kernels::CausalAttentionBackward(threads, q.data(), k.data(), v.data(), out.data(), dout.data(), dq.data(),
                                     dk.data(), dv.data(), T, 0, kHeads, kKvHeads, kHeadDim, scratch.data());
    benchmark::ClobberMemory();
  }
  const double pairs = static_cast<double>(T * (T + 1) / 2);
  const double flops = 2.0 * 4.0 * kHeadDim * kHeads * pairs * static_cast<double>(state.iterations());
  state.counters["GFLOPs"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["frac_fma"] = benchmark::Counter(flops / ProbeFmaPeak(threads), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_CausalAttentionBackward)
    ->Args({256, 2})
    ->Args({512, 2})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

BENCHMARK(BM_CausalAttention)
    ->Args({256, 0, 2})
    ->Args({512, 0, 1})
    ->Args({512, 0, 2})
    ->Args({1, 511, 1})
    ->Args({1, 511, 2})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

}  // namespace
}  // namespace nibble::bench
