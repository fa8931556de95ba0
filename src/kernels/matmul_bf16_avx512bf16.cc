// The vdpbf16ps variant of MatMulBf16 (kernels/matmul_bf16.h): Highway 1.0.3 emits no
// BF16 dot instructions, so this file uses intrinsics under a per-function target
// attribute (C7); it runs only after HasAvx512Bf16() said the CPU and OS support it.
#include "kernels/matmul_bf16.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "kernels/avx512_sum_lanes.h"

#define NB_AVX512BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace nibble::kernels::detail {
namespace {

// One vdpbf16ps step covers 32 bf16 pairs (16 f32 lanes, each += x[2i]·w[2i] +
// x[2i+1]·w[2i+1]). The K tail (K % 32) is read with a zero-masked load, so padding
// pairs contribute 0·0 and no scalar tail is needed.
constexpr size_t kPairsPerStep = 32;

NB_AVX512BF16_TARGET inline __m512bh LoadBf16(const uint16_t* p, __mmask32 mask) {
  return (__m512bh)_mm512_maskz_loadu_epi16(mask, p);
}

// kM x kN tile: y[i, j] = dot(xb row i, w row j), both bf16 bits with row stride K;
// y: row stride ldy. kM·kN accumulators + kN weight vectors + 1 activation vector stay
// within the 32 zmm registers for the tiles used (up to 4x4: 21).
template <size_t kM, size_t kN>
NB_AVX512BF16_TARGET inline void DotTile(const uint16_t* xb, const uint16_t* w, float* y, size_t K, size_t ldy) {
  __m512 acc[kM][kN];
  for (size_t i = 0; i < kM; ++i)
    for (size_t j = 0; j < kN; ++j) acc[i][j] = _mm512_setzero_ps();
  for (size_t k = 0; k < K; k += kPairsPerStep) {
    const size_t rem = std::min(kPairsPerStep, K - k);
    const __mmask32 mask = rem == kPairsPerStep ? ~__mmask32{0} : static_cast<__mmask32>((1u << rem) - 1u);
    __m512bh wv[kN];
    for (size_t j = 0; j < kN; ++j) wv[j] = LoadBf16(w + j * K + k, mask);
    for (size_t i = 0; i < kM; ++i) {
      const __m512bh xv = LoadBf16(xb + i * K + k, mask);
      for (size_t j = 0; j < kN; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
    }
  }
  for (size_t i = 0; i < kM; ++i)
    for (size_t j = 0; j < kN; ++j) y[i * ldy + j] = kernels::SumLanes512(acc[i][j]);
}

}  // namespace

// Blocking as in the Highway variant: 32 activation rows (256 KiB of bf16 at K = 4096)
// stay in L2 while 4-row weight tiles stream past; 4x4 tiles reuse each weight vector
// for four rows (the prompt case), 1x4 for the GEMV.
NB_AVX512BF16_TARGET void MatMulBf16RangeAvx512Bf16(const uint16_t* xb, const uint16_t* w, float* y, size_t M,
                                                    size_t N, size_t K, size_t n_begin, size_t n_end) noexcept {
  constexpr size_t kBlockM = 32;
  constexpr size_t kTileN = 4;
  for (size_t m0 = 0; m0 < M; m0 += kBlockM) {
    const size_t m1 = std::min(M, m0 + kBlockM);
    size_t n = n_begin;
    for (; n + kTileN <= n_end; n += kTileN) {
      const uint16_t* wt = w + n * K;
      size_t m = m0;
      for (; m + 4 <= m1; m += 4) DotTile<4, kTileN>(xb + m * K, wt, y + m * N + n, K, N);
      for (; m < m1; ++m) DotTile<1, kTileN>(xb + m * K, wt, y + m * N + n, K, N);
    }
    for (; n < n_end; ++n) {
      for (size_t m = m0; m < m1; ++m) DotTile<1, 1>(xb + m * K, w + n * K, y + m * N + n, K, N);
    }
  }
}

}  // namespace nibble::kernels::detail

#else  // not x86: HasAvx512Bf16() is false, so this is never called.

namespace nibble::kernels::detail {
void MatMulBf16RangeAvx512Bf16(const uint16_t*, const uint16_t*, float*, size_t, size_t, size_t, size_t,
                               size_t) noexcept {}
}  // namespace nibble::kernels::detail

#endif
