// Per-target body of the Highway variant of MatMulBf16 (kernels/matmul_bf16.h): the same
// kM x kN register tiles as matmul-inl.h, with each bf16 weight widened exactly to f32
// (zero-extend to 32 bits, shift left 16) before the FMA. Activations arrive already
// rounded to bf16 and widened back to f32, so every product is exact.

#if defined(NIBBLE_KERNELS_MATMUL_BF16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_MATMUL_BF16_INL_H_
#undef NIBBLE_KERNELS_MATMUL_BF16_INL_H_
#else
#define NIBBLE_KERNELS_MATMUL_BF16_INL_H_
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes bf16 bits -> f32 (exact).
template <class DF>
HWY_INLINE hn::Vec<DF> LoadBf16AsF32(DF df, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, DF> d16;
  const hn::Rebind<uint32_t, DF> du32;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(d16, p))));
}

inline float Bf16BitsToF32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// kM x kN tile: y[i, j] = dot(xr row i, w row j). xr: [kM, K] f32 (bf16-exact values),
// w: [kN, K] bf16 bits, both with row stride K; y: row stride ldy. Register budget as in
// matmul-inl.h (at most 2x4 accumulators + 4 weight vectors + 1 activation vector).
template <size_t kM, size_t kN>
HWY_INLINE void DotTileBf16(const float* HWY_RESTRICT xr, const uint16_t* HWY_RESTRICT w, float* HWY_RESTRICT y,
                            size_t K, size_t ldy) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kM][kN];
  for (size_t i = 0; i < kM; ++i)
    for (size_t j = 0; j < kN; ++j) acc[i][j] = hn::Zero(d);
  size_t k = 0;
  for (; k + L <= K; k += L) {
    hn::Vec<decltype(d)> wv[kN];
    for (size_t j = 0; j < kN; ++j) wv[j] = LoadBf16AsF32(d, w + j * K + k);
    for (size_t i = 0; i < kM; ++i) {
      const auto xv = hn::LoadU(d, xr + i * K + k);
      for (size_t j = 0; j < kN; ++j) acc[i][j] = hn::MulAdd(xv, wv[j], acc[i][j]);
    }
  }
  for (size_t i = 0; i < kM; ++i) {
    for (size_t j = 0; j < kN; ++j) {
      float s = hn::GetLane(hn::SumOfLanes(d, acc[i][j]));
      for (size_t kk = k; kk < K; ++kk) s += xr[i * K + kk] * Bf16BitsToF32(w[j * K + kk]);
      y[i * ldy + j] = s;
    }
  }
}

// Output columns [n_begin, n_end) for all M rows. Blocking as in MatMulRangeImpl: 32
// activation rows (512 KiB of f32 at K = 4096, within L2) stay cached while 4-row weight
// tiles stream past; weights are read ceil(M / 32) times.
// One GEMV output (M = 1): a single sequential weight stream with 4 accumulators, as
// DotRow in matmul-inl.h (a 1x4 tile streamed ~1.7x slower from DRAM). Sum order: the 4
// partial sums pairwise, then lanes, then the scalar K tail.
HWY_INLINE float DotRowBf16(const float* HWY_RESTRICT x, const uint16_t* HWY_RESTRICT w, size_t K) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t k = 0;
  for (; k + 4 * L <= K; k += 4 * L) {
    a0 = hn::MulAdd(hn::LoadU(d, x + k), LoadBf16AsF32(d, w + k), a0);
    a1 = hn::MulAdd(hn::LoadU(d, x + k + L), LoadBf16AsF32(d, w + k + L), a1);
    a2 = hn::MulAdd(hn::LoadU(d, x + k + 2 * L), LoadBf16AsF32(d, w + k + 2 * L), a2);
    a3 = hn::MulAdd(hn::LoadU(d, x + k + 3 * L), LoadBf16AsF32(d, w + k + 3 * L), a3);
  }
  for (; k + L <= K; k += L) a0 = hn::MulAdd(hn::LoadU(d, x + k), LoadBf16AsF32(d, w + k), a0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; k < K; ++k) s += x[k] * Bf16BitsToF32(w[k]);
  return s;
}

inline void MatMulBf16RangeImpl(const float* HWY_RESTRICT xr, const uint16_t* HWY_RESTRICT w,
                                float* HWY_RESTRICT y, size_t M, size_t N, size_t K, size_t n_begin,
                                size_t n_end) {
  constexpr size_t kBlockM = 32;
  constexpr size_t kTileN = 4;
  if (M == 1) {
    for (size_t n = n_begin; n < n_end; ++n) y[n] = DotRowBf16(xr, w + n * K, K);
    return;
  }
  for (size_t m0 = 0; m0 < M; m0 += kBlockM) {
    const size_t m1 = std::min(M, m0 + kBlockM);
    size_t n = n_begin;
    for (; n + kTileN <= n_end; n += kTileN) {
      const uint16_t* wt = w + n * K;
      size_t m = m0;
      for (; m + 2 <= m1; m += 2) DotTileBf16<2, kTileN>(xr + m * K, wt, y + m * N + n, K, N);
      if (m < m1) DotTileBf16<1, kTileN>(xr + m * K, wt, y + m * N + n, K, N);
    }
    for (; n < n_end; ++n) {
      for (size_t m = m0; m < m1; ++m) DotTileBf16<1, 1>(xr + m * K, w + n * K, y + m * N + n, K, N);
    }
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
