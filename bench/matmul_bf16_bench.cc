// bf16-weight matmul (kernels/matmul_bf16.h): the GEMV at a 4096 x 4096 weight (32 MiB of
// bf16, DRAM) and the 64-row prompt case, for the Highway and vdpbf16ps variants at 1 and
// 2 threads. Reports weight bytes/s, frac_bw (that rate over the read bandwidth probed in
// this run) and GFLOP/s (2·M·N·K per call).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "core/float_convert.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul_bf16.h"
#include "bench_util.h"

namespace nibble::bench {
namespace {

// x: [M, K] f32, w: [N, K] bf16, y: [M, N] f32; values in [-1, 1) from an LCG, every page
// written. Args: M, N, K, threads, variant (1 = Highway, 2 = AVX512-BF16).
void BM_MatMulBf16(benchmark::State& state) {
  const size_t M = static_cast<size_t>(state.range(0)), N = static_cast<size_t>(state.range(1));
  const size_t K = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  const auto variant = static_cast<kernels::MatMulBf16Variant>(state.range(4));
  if (variant == kernels::MatMulBf16Variant::kAvx512Bf16 && !kernels::HasAvx512Bf16()) {
    state.SkipWithError("CPU lacks AVX512-BF16");
    return;
  }
  state.SetLabel(variant == kernels::MatMulBf16Variant::kHighway ? "highway" : "avx512bf16");
  auto x = hwy::AllocateAligned<float>(M * K);
  auto w = hwy::AllocateAligned<uint16_t>(N * K);
  auto y = hwy::AllocateAligned<float>(M * N);
  Lcg lcg;
  auto next = [&lcg] { return lcg.Next(); };
  for (size_t i = 0; i < M * K; ++i) x[i] = next();
  for (size_t i = 0; i < N * K; ++i) w[i] = F32ToBF16(next());
  for (auto _ : state) {
    kernels::MatMulBf16(threads, x.get(), w.get(), y.get(), M, N, K, variant);
    benchmark::ClobberMemory();
  }
  SetMatMulCounters(state, static_cast<double>(N * K * sizeof(uint16_t)), M, N, K, threads);
}

BENCHMARK(BM_MatMulBf16)
    ->ArgsProduct({{1, 64}, {4096}, {4096}, {1, 2}, {1, 2}})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

}  // namespace
}  // namespace nibble::bench
