// MatMul: Highway dispatch over the per-target tiles (matmul-inl.h), the OpenMP split
// of the output columns, oneDNN for prompts of >= kOnednnMinRowsF32 rows (gemm_onednn.h),
// and the double-accumulating scalar reference.
#include "kernels/matmul.h"

#include <omp.h>

#include <algorithm>

#include <string>

#include "kernels/gemm_onednn.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "kernels/matmul-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

void MatMulRange(const float* HWY_RESTRICT x, const float* HWY_RESTRICT w, float* HWY_RESTRICT y, size_t M,
                 size_t N, size_t K, size_t n_begin, size_t n_end) {
  MatMulRangeImpl(x, w, y, M, N, K, n_begin, n_end);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(MatMulRange);

namespace {
// Below this many multiply-adds one thread beats waking an OpenMP team (a few us of
// fork/join against ~0.1 ns per FMA lane).
constexpr size_t kMinParallelMacs = size_t{1} << 16;
// Column blocks are multiples of 16 weight rows: whole 4-row tiles, and 64-byte output
// lines (16 f32) per thread for M = 1, so threads do not share cache lines of y.
constexpr size_t kColumnAlign = 16;
}  // namespace

void MatMul(int num_threads, const float* x, const float* w, float* y, size_t M, size_t N, size_t K) noexcept {
  // Prompts go to oneDNN's brgemm (1.5-1.8x the tiled path at M = 512, bench/RESULTS.md); if it
  // fails (reported, never thrown) the Highway path below computes the same product.
  if (M >= kOnednnMinRowsF32 && !OnednnDisabled() && GemmOnednnF32(num_threads, x, w, y, M, N, K)) return;
  if (num_threads <= 1 || M * N * K < kMinParallelMacs || N < 2 * kColumnAlign) {
    NB_DYNAMIC_DISPATCH(MatMulRange)(x, w, y, M, N, K, 0, N);
    return;
  }
  const size_t per = (N + static_cast<size_t>(num_threads) - 1) / static_cast<size_t>(num_threads);
  const size_t chunk = (per + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int t = 0; t < num_threads; ++t) {
    const size_t begin = static_cast<size_t>(t) * chunk;
    if (begin < N) NB_DYNAMIC_DISPATCH(MatMulRange)(x, w, y, M, N, K, begin, std::min(N, begin + chunk));
  }
}

std::vector<KernelPath> DenseKernelPaths() {
  const std::string hwy = "highway " + HighwayTargetName();
  auto prompts = [&](bool bf16) {
    const OnednnUse o = OnednnPath(bf16);
    return o.used ? o.text : hwy + " (" + o.text + ")";
  };
  const std::string f32 = prompts(false), bf16 = prompts(true);
  // Without a bf16 primitive oneDNN takes bf16 prompts widened to f32, from the f32 crossover.
  const bool widened = !OnednnDisabled() && OnednnBf16Unavailable();
  return {
      {"f32 matmul, decode and prompts < 16 rows", hwy + " (register tiles)"},
      {"f32 matmul, prompts >= 16 rows", f32},
      {widened ? "bf16 matmul, decode and prompts < 16 rows" : "bf16 matmul, decode and prompts < 8 rows",
       hwy + " (bf16 widened to f32, FMA)"},
      {widened ? "bf16 matmul, prompts >= 16 rows" : "bf16 matmul, prompts >= 8 rows", bf16},
      {"attention, RMSNorm, softmax, SwiGLU, conversions", hwy},
  };
}

void MatMulRef(const float* x, const float* w, float* y, size_t M, size_t N, size_t K) noexcept {
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double s = 0.0;
      for (size_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * static_cast<double>(w[n * K + k]);
      y[m * N + n] = static_cast<float>(s);
    }
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
