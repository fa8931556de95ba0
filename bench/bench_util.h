// Shared pieces of the benchmarks: deterministic input values and the counters every
// matmul benchmark reports (weight bytes/s, frac_bw against the same-run probe, GFLOP/s).
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

#include "probes.h"

namespace nibble::bench {

// Values in [-scale, scale) from a 32-bit LCG (Numerical Recipes constants): the same
// inputs on every run, generated fast enough to write every page before timing.
class Lcg {
 public:
  explicit Lcg(uint32_t seed = 12345) : s_(seed) {}
  float Next(float scale = 1.0f) {
    s_ = s_ * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<int32_t>(s_)) * 0x1p-31f * scale;
  }

 private:
  uint32_t s_;
};

// y[M,N] = x[M,K] · W[N,K]^T that reads `weight_bytes` of W per iteration.
inline void SetMatMulCounters(benchmark::State& state, double weight_bytes, size_t M, size_t N, size_t K,
                              int threads) {
  const double iters = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(weight_bytes * iters));
  state.counters["frac_bw"] =
      benchmark::Counter(weight_bytes * iters / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] =
      benchmark::Counter(2.0 * static_cast<double>(M * N * K) * iters / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace nibble::bench
