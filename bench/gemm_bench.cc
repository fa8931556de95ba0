// Prompt GEMM on SmolLM2-135M shapes: oneDNN (kernels/gemm_onednn.h) against the Highway
// tiled paths, f32 and bf16 weights, M = 1..512, 2 threads. Reports GFLOP/s and its ratio
// to the compute peaks probed in this run: frac_fma (f32 FMA) and frac_dot (vdpbf16ps).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench_util.h"
#include "core/float_convert.h"
#include "hwy/aligned_allocator.h"
#include "kernels/gemm.h"
#include "kernels/gemm_onednn.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"

namespace nibble::bench {
namespace {

// Implementations (last benchmark argument).
//   f32:  0 = kernels::MatMul as dispatched (Highway below kOnednnMinRowsF32, oneDNN above;
//             Highway everywhere when the process runs with NIBBLE_DISABLE_ONEDNN=1, which
//             is how the tiled path is measured at large M), 1 = GemmOnednnF32.
//   bf16: 0 = MatMulBf16 kHighway, 1 = GemmOnednnBf16 (rounding of x included).
constexpr int64_t kImplKernel = 0;
constexpr int64_t kImplOnednn = 1;

void SetGemmCounters(benchmark::State& state, size_t M, size_t N, size_t K, int threads, bool bf16) {
  const double flops = 2.0 * static_cast<double>(M * N * K) * static_cast<double>(state.iterations());
  state.counters["GFLOPs"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["frac_fma"] = benchmark::Counter(flops / ProbeFmaPeak(threads), benchmark::Counter::kIsRate);
  if (bf16) {
    const double dot_peak = ProbeBf16DotPeak(threads);
    if (dot_peak > 0) state.counters["frac_dot"] = benchmark::Counter(flops / dot_peak, benchmark::Counter::kIsRate);
  }
}

// x: [M, K] f32, w: [N, K] f32, y: [M, N] f32; every page written before timing. Args: M, N,
// K, threads, impl.
void BM_GemmF32(benchmark::State& state) {
  const size_t M = static_cast<size_t>(state.range(0)), N = static_cast<size_t>(state.range(1));
  const size_t K = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  const bool onednn = state.range(4) == kImplOnednn;
  const bool kernel_uses_onednn = M >= kernels::kOnednnMinRowsF32 && !kernels::OnednnDisabled();
  state.SetLabel(onednn ? "onednn" : (kernel_uses_onednn ? "matmul(onednn)" : "matmul(highway)"));
  auto x = hwy::AllocateAligned<float>(M * K);
  auto w = hwy::AllocateAligned<float>(N * K);
  auto y = hwy::AllocateAligned<float>(M * N);
  Lcg lcg;
  for (size_t i = 0; i < M * K; ++i) x[i] = lcg.Next();
  for (size_t i = 0; i < N * K; ++i) w[i] = lcg.Next();
  ProbeFmaPeak(threads);  // measured once, outside any timing
  auto run = [&] {
    if (onednn) {
      if (!kernels::GemmOnednnF32(threads, x.get(), w.get(), y.get(), M, N, K)) state.SkipWithError("oneDNN failed");
    } else {
      kernels::MatMul(threads, x.get(), w.get(), y.get(), M, N, K);
    }
  };
  run();  // primitive creation (oneDNN JIT) and first touch of y, untimed
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  SetGemmCounters(state, M, N, K, threads, false);
}

// x: [M, K] f32, w: [N, K] bf16, y: [M, N] f32. Args: M, N, K, threads, impl.
void BM_GemmBf16(benchmark::State& state) {
  const size_t M = static_cast<size_t>(state.range(0)), N = static_cast<size_t>(state.range(1));
  const size_t K = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  const bool onednn = state.range(4) == kImplOnednn;
  state.SetLabel(onednn ? "onednn" : "highway");
  auto x = hwy::AllocateAligned<float>(M * K);
  auto w = hwy::AllocateAligned<uint16_t>(N * K);
  auto y = hwy::AllocateAligned<float>(M * N);
  Lcg lcg;
  for (size_t i = 0; i < M * K; ++i) x[i] = lcg.Next();
  for (size_t i = 0; i < N * K; ++i) w[i] = F32ToBF16(lcg.Next());
  ProbeFmaPeak(threads);
  ProbeBf16DotPeak(threads);
  auto run = [&] {
    if (onednn) {
      if (!kernels::GemmOnednnBf16(threads, x.get(), w.get(), y.get(), M, N, K)) state.SkipWithError("oneDNN failed");
    } else {
      kernels::MatMulBf16(threads, x.get(), w.get(), y.get(), M, N, K, kernels::MatMulBf16Variant::kHighway);
    }
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  SetGemmCounters(state, M, N, K, threads, true);
}

// The two backward GEMMs of a Linear y = x·wᵀ (kernels/gemm.h) on the forward's shapes,
// so frac_fma compares directly with BM_GemmF32 (issue 13: backward >= 0.8x the forward's
// ratio to peak). Args: M, N, K, threads, which (0 = dX [M, K] = dY [M, N] · W [N, K],
// 1 = dW [N, K] += dYᵀ · X [M, K]).
void BM_GemmBackwardF32(benchmark::State& state) {
  const size_t M = static_cast<size_t>(state.range(0)), N = static_cast<size_t>(state.range(1));
  const size_t K = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  const bool weight = state.range(4) == 1;
  state.SetLabel(weight ? "dW=dYt.X" : "dX=dY.W");
  auto dy = hwy::AllocateAligned<float>(M * N);
  auto w = hwy::AllocateAligned<float>(N * K);
  auto x = hwy::AllocateAligned<float>(M * K);
  auto out = hwy::AllocateAligned<float>(weight ? N * K : M * K);
  Lcg lcg;
  for (size_t i = 0; i < M * N; ++i) dy[i] = lcg.Next();
  for (size_t i = 0; i < N * K; ++i) w[i] = lcg.Next();
  for (size_t i = 0; i < M * K; ++i) x[i] = lcg.Next();
  for (size_t i = 0; i < (weight ? N * K : M * K); ++i) out[i] = 0.0f;
  ProbeFmaPeak(threads);
  auto run = [&] {
    if (weight) {
      kernels::Gemm(threads, kernels::Trans::kYes, kernels::Trans::kNo, dy.get(), x.get(), out.get(), N, K, M, true);
    } else {
      kernels::Gemm(threads, kernels::Trans::kNo, kernels::Trans::kNo, dy.get(), w.get(), out.get(), M, K, N);
    }
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  SetGemmCounters(state, M, N, K, threads, false);
}

// SmolLM2-135M projections (hidden 576, 9 heads of 64 with 3 KV heads, MLP 1536, vocab
// 49152): q/o 576×576, k/v 192×576, gate/up 1536×576, down 576×1536, classifier 49152×576.
void GemmArgs(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
  for (int64_t impl : {kImplKernel, kImplOnednn})
    for (const auto& nk : shapes)
      for (int64_t m : {1, 2, 4, 8, 16, 32, 64, 256, 512}) b->Args({m, nk[0], nk[1], 2, impl});
}

BENCHMARK(BM_GemmF32)->Apply(GemmArgs)->Repetitions(3)->DisplayAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemmBf16)->Apply(GemmArgs)->Repetitions(3)->DisplayAggregatesOnly(true)->UseRealTime();

// Training batches: B·T = 256 and 512 rows (seq 256, batch 1 or 2).
void GemmBackwardArgs(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
  for (int64_t which : {0, 1})
    for (const auto& nk : shapes)
      for (int64_t m : {256, 512}) b->Args({m, nk[0], nk[1], 2, which});
}
BENCHMARK(BM_GemmBackwardF32)->Apply(GemmBackwardArgs)->Repetitions(3)->DisplayAggregatesOnly(true)->UseRealTime();

}  // namespace
}  // namespace nibble::bench
