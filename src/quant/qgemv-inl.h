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
#include "hwy/highway.h"
#include "quant/lut16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One row of a 4-bit weight whose blocks align with the row (K % B == 0, B % 32 == 0).
//   codes: [K/2] packed (element 2j high nibble); scales: [K/B] f32 block absmax
//   xe, xo: [K/2] f32 the even / odd elements of x (deinterleaved once per GEMV)
//   lut: [16] f32. kBf16: weights f32(lut * s) rounded to bf16; xe/xo already bf16-rounded.
// Returns sum_k w_k x_k accumulated in f32.
template <bool kBf16>
HWY_INLINE float Dot4Row(const float* HWY_RESTRICT lut, const uint8_t* HWY_RESTRICT codes,
                         const float* HWY_RESTRICT scales, const float* HWY_RESTRICT xe,
                         const float* HWY_RESTRICT xo, size_t K, size_t B) {
  const hn::ScalableTag<float> df;
  constexpr size_t N = hn::MaxLanes(df);
  constexpr bool kVector = Lut16Vectorised(hn::ScalableTag<float>());
  float total = 0.0f;
  if constexpr (!kVector) {
    for (size_t b = 0; b < K / B; ++b) {
      float acc = 0.0f;
      const float s = scales[b];
      for (size_t j = b * B / 2; j < (b + 1) * B / 2; ++j) {
        float we = lut[codes[j] >> 4], wo = lut[codes[j] & 0xF];
        if constexpr (kBf16) {
          we = BF16ToF32(F32ToBF16(we * s));
          wo = BF16ToF32(F32ToBF16(wo * s));
        }
        acc += we * xe[j] + wo * xo[j];
      }
      total += kBf16 ? acc : acc * s;
    }
    return total;
  } else {
    const hn::RebindToSigned<decltype(df)> di;
    const hn::RebindToUnsigned<decltype(df)> du;
    const hn::Rebind<uint8_t, decltype(df)> du8;
    const Lut16<decltype(df)> table(df, lut);
    const auto mask = hn::Set(di, 0xF);
    auto lookup = [&](hn::Vec<decltype(di)> idx) { return table(df, idx); };
    auto round_bf16 = [&](hn::Vec<decltype(df)> v) {
      const auto bits = hn::BitCast(du, v);
      const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1));
      const auto r = hn::And(hn::Add(bits, hn::Add(lsb, hn::Set(du, 0x7FFF))), hn::Set(du, 0xFFFF0000u));
      return hn::BitCast(df, r);
    };
    auto total_v = hn::Zero(df);
    for (size_t b = 0; b < K / B; ++b) {
      auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
      const auto s = hn::Set(df, scales[b]);
      for (size_t j = b * B / 2; j < (b + 1) * B / 2; j += N) {
        const auto q = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(du8, codes + j)));
        auto we = lookup(hn::ShiftRight<4>(q));
        auto wo = lookup(hn::And(q, mask));
        if constexpr (kBf16) {
          we = round_bf16(hn::Mul(we, s));
          wo = round_bf16(hn::Mul(wo, s));
        }
        acc0 = hn::MulAdd(we, hn::LoadU(df, xe + j), acc0);
        acc1 = hn::MulAdd(wo, hn::LoadU(df, xo + j), acc1);
      }
      if constexpr (kBf16) {
        total_v = hn::Add(total_v, hn::Add(acc0, acc1));
      } else {
        total_v = hn::MulAdd(hn::Add(acc0, acc1), s, total_v);
      }
    }
    return hn::GetLane(hn::SumOfLanes(df, total_v));
  }
}

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
