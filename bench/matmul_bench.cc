// f32 GEMV (kernels/matmul.h, M = 1) at a 4096 x 4096 weight (64 MiB, DRAM) and a
// 1024 x 1024 one (4 MiB, cache-resident), 1 and 2 threads, plus a 64-row prompt tile.
// Reports weight bytes/s and frac_bw: that rate over the read bandwidth probed in this run.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "hwy/aligned_allocator.h"
#include "kernels/matmul.h"
#include "bench_util.h"

namespace nibble::bench {
namespace {

// x: [M, K], w: [N, K], y: [M, N] f32; values in [-1, 1) from an LCG, every page written.
void BM_MatMulF32(benchmark::State& state) {
  const size_t M = static_cast<size_t>(state.range(0)), N = static_cast<size_t>(state.range(1));
  const size_t K = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  auto x = hwy::AllocateAligned<float>(M * K);
  auto w = hwy::AllocateAligned<float>(N * K);
  auto y = hwy::AllocateAligned<float>(M * N);
  Lcg lcg;
  auto next = [&lcg] { return lcg.Next(); };
  for (size_t i = 0; i < M * K; ++i) x[i] = next();
  for (size_t i = 0; i < N * K; ++i) w[i] = next();
  for (auto _ : state) {
    kernels::MatMul(threads, x.get(), w.get(), y.get(), M, N, K);
    benchmark::ClobberMemory();
  }
  SetMatMulCounters(state, static_cast<double>(N * K * sizeof(float)), M, N, K, threads);
}

// Args: M, N, K, threads.
BENCHMARK(BM_MatMulF32)
    ->Args({1, 4096, 4096, 1})
    ->Args({1, 4096, 4096, 2})
    ->Args({1, 1024, 1024, 1})
    ->Args({1, 1024, 1024, 2})
    ->Args({64, 1024, 1024, 1})
    ->Args({64, 1024, 1024, 2})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

}  // namespace
}  // namespace nibble::bench
