// MatMulBf16: rounds the activations to bf16 once, then dispatches a whole column range
// to the Highway tiles (matmul_bf16-inl.h) or the vdpbf16ps variant after a one-time
// CPUID probe (core/cpu_features.h); OpenMP over the output columns; oneDNN (bf16 × bf16 → f32) for kAuto
// prompts of >= kOnednnMinRowsBf16 rows (gemm_onednn.h); the double-accumulating reference.
#include "kernels/matmul_bf16.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/check.h"
#include "core/cpu_features.h"
#include "core/float_convert.h"
#include "kernels/convert.h"
#include "kernels/gemm_onednn.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_bf16.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/matmul_bf16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

void MatMulBf16Range(const float* HWY_RESTRICT xr, const uint16_t* HWY_RESTRICT w, float* HWY_RESTRICT y,
                     size_t M, size_t N, size_t K, size_t n_begin, size_t n_end) {
  MatMulBf16RangeImpl(xr, w, y, M, N, K, n_begin, n_end);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(MatMulBf16Range);

namespace {

// Same thresholds as MatMul (matmul.cc): below 2^16 multiply-adds one thread beats an
// OpenMP fork/join; column blocks are multiples of 16 rows (whole 4-row tiles, and
// 64-byte lines of y per thread when M = 1).
constexpr size_t kMinParallelMacs = size_t{1} << 16;
constexpr size_t kColumnAlign = 16;

// Splits [0, N) into kColumnAlign-multiple blocks over the threads and runs `range` on each.
template <class Range>
void ForColumnBlocks(int num_threads, size_t M, size_t N, size_t K, const Range& range) {
  if (num_threads <= 1 || M * N * K < kMinParallelMacs || N < 2 * kColumnAlign) {
    range(0, N);
    return;
  }
  const size_t per = (N + static_cast<size_t>(num_threads) - 1) / static_cast<size_t>(num_threads);
  const size_t chunk = (per + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int t = 0; t < num_threads; ++t) {
    const size_t begin = static_cast<size_t>(t) * chunk;
    if (begin < N) range(begin, std::min(N, begin + chunk));
  }
}

}  // namespace

bool HasAvx512Bf16() noexcept {
  return CpuHasAvx512Bf16();  // the one process-wide CPU probe (core/cpu_features.h)
}

void MatMulBf16(int num_threads, const float* x, const uint16_t* w, float* y, size_t M, size_t N, size_t K,
                MatMulBf16Variant variant) noexcept {
  // kAuto is the Highway variant for now: on Zen 4 it measured faster than the
  // unblocked vdpbf16ps tiles (bench/RESULTS.md, 2 threads: 40.6 vs 28.0 GB/s GEMV,
  // 153 vs 127 GFLOP/s at M=64). Revisit once the bf16-dot variant blocks K.
  // Prompts (M >= kOnednnMinRowsBf16) go to oneDNN, which rounds the activations the same
  // way (bench/RESULTS.md "oneDNN GEMM"); on failure the Highway variant runs instead.
  if (variant == MatMulBf16Variant::kAuto) {
    if (M >= kOnednnMinRowsBf16 && !OnednnDisabled() && GemmOnednnBf16(num_threads, x, w, y, M, N, K)) return;
    variant = MatMulBf16Variant::kHighway;
  }
  // Activations rounded once with the integer RNE of core/float_convert.h (not
  // vcvtne2ps2bf16, which flushes subnormals), so both variants see the same bf16 values.
  std::vector<uint16_t> xb(M * K);
  ConvertFromF32(DType::kBF16, x, xb.data(), M * K);
  if (variant == MatMulBf16Variant::kAvx512Bf16) {
    NB_CHECK(HasAvx512Bf16(), "MatMulBf16: AVX512-BF16 variant requested on a CPU without it");
    NoteDispatch("bf16 matmul avx512bf16");
    ForColumnBlocks(num_threads, M, N, K, [&](size_t b, size_t e) {
      detail::MatMulBf16RangeAvx512Bf16(xb.data(), w, y, M, N, K, b, e);
    });
    return;
  }
  std::vector<float> xr(M * K);
  ConvertToF32(DType::kBF16, xb.data(), xr.data(), M * K);
  ForColumnBlocks(num_threads, M, N, K, [&](size_t b, size_t e) {
    NB_DYNAMIC_DISPATCH(MatMulBf16Range)(xr.data(), w, y, M, N, K, b, e);
  });
}

void MatMulBf16Ref(const float* x, const uint16_t* w, float* y, size_t M, size_t N, size_t K) noexcept {
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double s = 0.0;
      for (size_t k = 0; k < K; ++k) {
        const double xv = BF16ToF32(F32ToBF16(x[m * K + k]));
        s += xv * static_cast<double>(BF16ToF32(w[n * K + k]));
      }
      y[m * N + n] = static_cast<float>(s);
    }
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
