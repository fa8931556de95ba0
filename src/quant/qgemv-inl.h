// Per-target body of the 4-bit and int8 GEMV (dequantization in registers); included
// once per target by qgemv.cc.
#if defined(NIBBLE_QUANT_QGEMV_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_QGEMV_INL_H_
#undef NIBBLE_QUANT_QGEMV_INL_H_
#else
#define NIBBLE_QUANT_QGEMV_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "core/float_convert.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "quant/lut16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Prefetch (into L2: prefetcht1) the line holding byte `offset` of row r of the next
// pass, whose rows start at `next` and are K/2 bytes long. kR row streams 7 KB apart
// outrun the hardware prefetcher's distance; one row set ahead keeps DRAM busy
// (bench/RESULTS.md). A thread's first pass and its single-row tail rely on the
// hardware prefetcher.
HWY_INLINE void PrefetchNext(const uint8_t* next, size_t r, size_t K, size_t offset) {
  if (next != nullptr) __builtin_prefetch(next + r * (K / 2) + offset, 0, 2);
}

// kR rows of a 4-bit weight whose blocks align with the rows (K % B == 0, B % 32 == 0),
// processed together so each activation load serves kR rows and kR code streams are in
// flight (the weights come from DRAM: more independent streams, better prefetching).
//   codes[r]: [K/2] packed row (element 2j high nibble); scales[r]: [K/B] f32 block absmax
//   xe, xo: [K/2] f32 the even / odd elements of x (deinterleaved once per GEMV)
//   lut: [16] f32. kBf16: weights f32(lut * s) rounded to bf16 (RNE); xe/xo bf16-rounded.
//   next: the next pass's first row (its kR rows follow at K/2 bytes each), or null:
//     PrefetchNext pulls the bytes this pass reads, one row set ahead, into L2.
// out[r] = sum_k w_k x_k accumulated in f32 (kF32: each block's sum of lut·x, then · s).
#if NB_LUT16_VECTOR
// f32 lanes rounded to the nearest bf16 (RNE, as F32ToBF16 for finite values), kept as f32.
template <class DF>
HWY_INLINE hn::Vec<DF> RoundToBf16(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1));
  return hn::BitCast(df, hn::And(hn::Add(bits, hn::Add(lsb, hn::Set(du, 0x7FFF))), hn::Set(du, 0xFFFF0000u)));
}
#endif

template <bool kBf16, size_t kR>
HWY_INLINE void Dot4Rows(const float* HWY_RESTRICT lut, const uint8_t* const* codes, const float* const* scales,
                         const float* HWY_RESTRICT xe, const float* HWY_RESTRICT xo, size_t K, size_t B,
                         float* out, const uint8_t* next) {
  const hn::ScalableTag<float> df;
  constexpr size_t N = hn::MaxLanes(df);
#if !NB_LUT16_VECTOR  // the plain loop on every other target (lut16-inl.h)
  {
    (void)N;
    (void)next;
    for (size_t r = 0; r < kR; ++r) {
      float total = 0.0f;
      for (size_t b = 0; b < K / B; ++b) {
        float acc = 0.0f;
        const float s = scales[r][b];
        for (size_t j = b * B / 2; j < (b + 1) * B / 2; ++j) {
          float we = lut[codes[r][j] >> 4], wo = lut[codes[r][j] & 0xF];
          if constexpr (kBf16) {
            we = BF16ToF32(F32ToBF16(we * s));
            wo = BF16ToF32(F32ToBF16(wo * s));
          }
          acc += we * xe[j] + wo * xo[j];
        }
        total += kBf16 ? acc : acc * s;
      }
      out[r] = total;
    }
  }
#else
  {
    const hn::RebindToSigned<decltype(df)> di;
    const hn::RebindToUnsigned<decltype(df)> du;
    const hn::Rebind<uint8_t, decltype(df)> du8;
    const Lut16<decltype(df)> table(df, lut);
    const auto mask = hn::Set(di, 0xF);
    auto round_bf16 = [&](hn::Vec<decltype(df)> v) { return RoundToBf16(df, v); };
    hn::Vec<decltype(df)> total[kR];
    for (size_t r = 0; r < kR; ++r) total[r] = hn::Zero(df);
    for (size_t b = 0; b < K / B; ++b) {
      hn::Vec<decltype(df)> acc[kR], s[kR];
      for (size_t r = 0; r < kR; ++r) {
        acc[r] = hn::Zero(df);
        s[r] = hn::Set(df, scales[r][b]);
        for (size_t off = 0; off < B / 2; off += 64) PrefetchNext(next, r, K, b * B / 2 + off);
      }
      for (size_t j = b * B / 2; j < (b + 1) * B / 2; j += N) {
        const auto x0 = hn::LoadU(df, xe + j), x1 = hn::LoadU(df, xo + j);
        for (size_t r = 0; r < kR; ++r) {
          const auto q = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(du8, codes[r] + j)));
          auto we = table(df, hn::ShiftRight<4>(q));
          auto wo = table(df, hn::And(q, mask));
          if constexpr (kBf16) {
            we = round_bf16(hn::Mul(we, s[r]));
            wo = round_bf16(hn::Mul(wo, s[r]));
          }
          acc[r] = hn::MulAdd(we, x0, acc[r]);
          acc[r] = hn::MulAdd(wo, x1, acc[r]);
        }
      }
      for (size_t r = 0; r < kR; ++r)
        total[r] = kBf16 ? hn::Add(total[r], acc[r]) : hn::MulAdd(acc[r], s[r], total[r]);
    }
    for (size_t r = 0; r < kR; ++r) out[r] = hn::GetLane(hn::SumOfLanes(df, total[r]));
  }
#endif
}

#if NB_LUT16_VECTOR
// Elements of x in the order Dot4RowsWide reads them: for each chunk of 8N elements
// (N = f32 lanes), 8 planes of N floats, plane k lane l = x[chunk + 8l + e(k)] with
// e = 1, 0, 3, 2, 5, 4, 7, 6 (nibble k of a little-endian 32-bit lane of codes is
// element e(k) of that lane's 8). xp: [K] (K % 8N == 0).
template <class DF>
HWY_INLINE void PermuteForWide(DF df, const float* HWY_RESTRICT x, size_t K, float* HWY_RESTRICT xp) {
  const size_t N = hn::Lanes(df);
  for (size_t c = 0; c < K; c += 8 * N)
    for (size_t k = 0; k < 8; ++k)
      for (size_t l = 0; l < N; ++l) xp[c + k * N + l] = x[c + 8 * l + 2 * (k / 2) + (1 - k % 2)];
}

// The 4-bit GEMV with one code load per 8N elements: each 32-bit lane holds 8 codes;
// shifting the lanes right by 4k brings nibble k to the bottom, and Lut16::Low4 looks up
// the low 4 bits of any lane (the upper bits are ignored by contract, never by accident:
// lut16-inl.h). kR rows share each activation plane. xp from PermuteForWide.
// f32 compute (kBf16 false): the same per-block scaling as Dot4Rows (block sums of lut·x,
// then · absmax), in another summation order. Preconditions: vector target, K % 8N == 0,
// and B % 8N == 0 or (B == 64 and N == 16).
// bf16 compute (kBf16 true): per row and block, the table itself becomes the 16 weights
// bf16(f32(lut · absmax)) (two multiplies and roundings per 64 weights on AVX2, instead
// of two per 16), multiplied with bf16-rounded x: bitsandbytes' semantics, as Dot4Rows
// computes them, summed in another order. Preconditions as for f32 with B % 8N == 0.
template <bool kBf16, size_t kR>
HWY_INLINE void Dot4RowsWide(const float* HWY_RESTRICT lut, const uint8_t* const* codes, const float* const* scales,
                             const float* HWY_RESTRICT xp, size_t K, size_t B, float* out, const uint8_t* next) {
  size_t log2_b = 0;  // B is a power of two (4-bit block sizes are)
  while ((size_t{1} << log2_b) < B) ++log2_b;
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  constexpr size_t N = hn::MaxLanes(df);
  const Lut16<decltype(df)> table(df, lut);
  const size_t chunk = 8 * N;
  const auto first_half = hn::FirstN(df, N / 2);
  hn::Vec<decltype(df)> total[kR];
  for (size_t r = 0; r < kR; ++r) total[r] = hn::Zero(df);
  for (size_t c = 0; c < K; c += chunk) {
    const float* xc = xp + c;
    const size_t b = c >> log2_b;  // lane l covers elements c + 8l .. c + 8l + 7: one block unless B == 64 < chunk
    for (size_t r = 0; r < kR; ++r) {
      PrefetchNext(next, r, K, c / 2);
      const auto q = hn::LoadU(du, reinterpret_cast<const uint32_t*>(codes[r] + c / 2));
      Lut16<decltype(df)> t = table;
      if constexpr (kBf16) {  // this block's 16 weights, rounded to bf16
        const auto s = hn::Set(df, scales[r][b]);
        t = Lut16<decltype(df)>(RoundToBf16(df, hn::Mul(table.lo, s)), RoundToBf16(df, hn::Mul(table.hi, s)));
      }
      // Two chains per row (even / odd planes) halve the FMA latency chain.
      auto a0 = hn::Mul(t.Low4(df, q), hn::LoadU(df, xc));
      auto a1 = hn::Mul(t.Low4(df, hn::ShiftRight<4>(q)), hn::LoadU(df, xc + N));
      a0 = hn::MulAdd(t.Low4(df, hn::ShiftRight<8>(q)), hn::LoadU(df, xc + 2 * N), a0);
      a1 = hn::MulAdd(t.Low4(df, hn::ShiftRight<12>(q)), hn::LoadU(df, xc + 3 * N), a1);
      a0 = hn::MulAdd(t.Low4(df, hn::ShiftRight<16>(q)), hn::LoadU(df, xc + 4 * N), a0);
      a1 = hn::MulAdd(t.Low4(df, hn::ShiftRight<20>(q)), hn::LoadU(df, xc + 5 * N), a1);
      a0 = hn::MulAdd(t.Low4(df, hn::ShiftRight<24>(q)), hn::LoadU(df, xc + 6 * N), a0);
      a1 = hn::MulAdd(t.Low4(df, hn::ShiftRight<28>(q)), hn::LoadU(df, xc + 7 * N), a1);
      if constexpr (kBf16) {
        total[r] = hn::Add(total[r], hn::Add(a0, a1));
      } else {
        const auto s = B >= chunk ? hn::Set(df, scales[r][b])
                                  : hn::IfThenElse(first_half, hn::Set(df, scales[r][b]), hn::Set(df, scales[r][b + 1]));
        total[r] = hn::MulAdd(hn::Add(a0, a1), s, total[r]);
      }
    }
  }
  for (size_t r = 0; r < kR; ++r) out[r] = hn::GetLane(hn::SumOfLanes(df, total[r]));
}
#endif  // NB_LUT16_VECTOR

// sum_k a[k] * b[k] for int8 a, b (exact int32, pmaddwd).
HWY_INLINE int32_t DotI8(const int8_t* HWY_RESTRICT a, const int8_t* HWY_RESTRICT b, size_t K) {
#if HWY_TARGET == HWY_SCALAR
  int32_t s = 0;
  for (size_t k = 0; k < K; ++k) s += int32_t{a[k]} * int32_t{b[k]};
  return s;
#else
  const hn::ScalableTag<int32_t> d32;
  const hn::Repartition<int16_t, decltype(d32)> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const size_t N16 = hn::Lanes(d16);
  auto acc = hn::Zero(d32), unused = hn::Zero(d32);
  size_t k = 0;
  for (; k + N16 <= K; k += N16) {
    const auto va = hn::PromoteTo(d16, hn::LoadU(d8, a + k));
    const auto vb = hn::PromoteTo(d16, hn::LoadU(d8, b + k));
    acc = hn::ReorderWidenMulAccumulate(d32, va, vb, acc, unused);
  }
  int32_t s = hn::GetLane(hn::SumOfLanes(d32, hn::RearrangeToOddPlusEven(acc, unused)));
  for (; k < K; ++k) s += int32_t{a[k]} * int32_t{b[k]};
  return s;
#endif
}

// sum_k float(q[k]) * x[k] for int8 codes q (f32 accumulation).
HWY_INLINE float DotI8F32(const int8_t* HWY_RESTRICT q, const float* HWY_RESTRICT x, size_t K) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  auto acc = hn::Zero(df);
  size_t k = 0;
  for (; k + N <= K; k += N)
    acc = hn::MulAdd(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + k))), hn::LoadU(df, x + k), acc);
  float s = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; k < K; ++k) s += static_cast<float>(q[k]) * x[k];
  return s;
}

}  // namespace nibble::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_QGEMV_INL_H_
