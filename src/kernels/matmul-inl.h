// Per-target body of MatMul (kernels/matmul.h): register tiles of kM activation rows by
// kN weight rows, one f32 vector accumulator per (row, weight row) pair, FMA over K,
// the K tail (K % lanes) summed in scalar. Weights are read unaligned (any K).

#if defined(NIBBLE_KERNELS_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_MATMUL_INL_H_
#undef NIBBLE_KERNELS_MATMUL_INL_H_
#else
#define NIBBLE_KERNELS_MATMUL_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// kM x kN tile: y[i, j] = dot(x row i, w row j) for i < kM, j < kN.
// x: [kM, K] with row stride K; w: [kN, K] with row stride K; y: row stride ldy.
// kM * kN accumulators + kN weight vectors + 1 x vector stay within 16 registers
// (AVX2) for the tiles used below (1x4, 2x4).
template <size_t kM, size_t kN>
HWY_INLINE void DotTile(const float* HWY_RESTRICT x, const float* HWY_RESTRICT w, float* HWY_RESTRICT y,
                        size_t K, size_t ldy) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kM][kN];
  for (size_t i = 0; i < kM; ++i)
    for (size_t j = 0; j < kN; ++j) acc[i][j] = hn::Zero(d);
  size_t k = 0;
  for (; k + L <= K; k += L) {
    hn::Vec<decltype(d)> wv[kN];
    for (size_t j = 0; j < kN; ++j) wv[j] = hn::LoadU(d, w + j * K + k);
    for (size_t i = 0; i < kM; ++i) {
      const auto xv = hn::LoadU(d, x + i * K + k);
      for (size_t j = 0; j < kN; ++j) acc[i][j] = hn::MulAdd(xv, wv[j], acc[i][j]);
    }
  }
  for (size_t i = 0; i < kM; ++i) {
    for (size_t j = 0; j < kN; ++j) {
      float s = hn::GetLane(hn::SumOfLanes(d, acc[i][j]));
      for (size_t kk = k; kk < K; ++kk) s += x[i * K + kk] * w[j * K + kk];
      y[i * ldy + j] = s;
    }
  }
}

// One output of the GEMV (M = 1): dot(x, w row) over K with 4 independent accumulators,
// so each weight row is one sequential stream (a 1x4 tile interleaves 4 rows and, with
// one accumulator per row, streamed 1.5-1.8x slower from DRAM on Zen 4 in a microbench
// of 60 cold 1536 x 576 matrices). Sum order: the 4 partial sums pairwise, then lanes,
// then the scalar K tail.
HWY_INLINE float DotRow(const float* HWY_RESTRICT x, const float* HWY_RESTRICT w, size_t K) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t k = 0;
  for (; k + 4 * L <= K; k += 4 * L) {
    a0 = hn::MulAdd(hn::LoadU(d, x + k), hn::LoadU(d, w + k), a0);
    a1 = hn::MulAdd(hn::LoadU(d, x + k + L), hn::LoadU(d, w + k + L), a1);
    a2 = hn::MulAdd(hn::LoadU(d, x + k + 2 * L), hn::LoadU(d, w + k + 2 * L), a2);
    a3 = hn::MulAdd(hn::LoadU(d, x + k + 3 * L), hn::LoadU(d, w + k + 3 * L), a3);
  }
  for (; k + L <= K; k += L) a0 = hn::MulAdd(hn::LoadU(d, x + k), hn::LoadU(d, w + k), a0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; k < K; ++k) s += x[k] * w[k];
  return s;
}

// Output columns [n_begin, n_end) of y = x · wᵀ for all M rows (shapes as in matmul.h).
// Blocking: kBlockM activation rows (32 x K x 4 bytes: 512 KiB at K = 4096, within L2)
// stay cached while the 4-row weight tiles of this column range stream past; the
// weights are therefore read ceil(M / 32) times. M == 1 is the GEMV: one pass.
inline void MatMulRangeImpl(const float* HWY_RESTRICT x, const float* HWY_RESTRICT w, float* HWY_RESTRICT y,
                            size_t M, size_t N, size_t K, size_t n_begin, size_t n_end) {
  constexpr size_t kBlockM = 32;
  constexpr size_t kTileN = 4;
  if (M == 1) {
    for (size_t n = n_begin; n < n_end; ++n) y[n] = DotRow(x, w + n * K, K);
    return;
  }
  for (size_t m0 = 0; m0 < M; m0 += kBlockM) {
    const size_t m1 = std::min(M, m0 + kBlockM);
    size_t n = n_begin;
    for (; n + kTileN <= n_end; n += kTileN) {
      const float* wt = w + n * K;
      size_t m = m0;
      for (; m + 2 <= m1; m += 2) DotTile<2, kTileN>(x + m * K, wt, y + m * N + n, K, N);
      if (m < m1) DotTile<1, kTileN>(x + m * K, wt, y + m * N + n, K, N);
    }
    for (; n < n_end; ++n) {
      for (size_t m = m0; m < m1; ++m) DotTile<1, 1>(x + m * K, w + n * K, y + m * N + n, K, N);
    }
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
