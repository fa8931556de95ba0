// Per-target bodies of the 4-bit blockwise quantizer (NF4 / FP4) and dequantizer (any
// 4-bit table format) over whole blocks; included once per target by blockwise4.cc.
// Bit-identical to the scalar Ref: the same absmax (max is exact in any order), the
// same f32(1/absmax) and f32(x * inv), and each selection rule evaluated exactly.
#if defined(NIBBLE_QUANT_BLOCKWISE4_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_BLOCKWISE4_INL_H_
#undef NIBBLE_QUANT_BLOCKWISE4_INL_H_
#else
#define NIBBLE_QUANT_BLOCKWISE4_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "quant/formats/fp4/fp4.h"
#include "quant/formats/nf4/nf4.h"
#include "quant/lut16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if NB_LUT16_VECTOR  // 8- or 16-lane targets (lut16-inl.h)

// NF4 code of each lane: the number of the 15 thresholds below s, found by the binary
// search of the CUDA kernel's decision tree (T[7], then T[3] or T[11], ...) with the
// thresholds in a register table: 4 lookups, compares and masked adds instead of 15
// compares. Equal to the counting rule for every non-NaN s; NaN fails every compare: 0.
template <class DF, class L, class V>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> SelectNf4(DF df, const L& thresholds, V s) {
  const hn::RebindToSigned<DF> di;
  auto c = hn::IfThenElseZero(hn::RebindMask(di, hn::Gt(s, hn::Set(df, nf4::Threshold(7)))), hn::Set(di, 8));
  for (int step : {4, 2, 1}) {
    const auto t = thresholds(df, hn::Add(c, hn::Set(di, step - 1)));
    c = hn::Add(c, hn::IfThenElseZero(hn::RebindMask(di, hn::Gt(s, t)), hn::Set(di, step)));
  }
  return c;
}

// FP4 code: sign bit 8 for s < 0; the magnitude's rank c among the 7 kernel thresholds
// maps to bits 2..0 as 0,1,6,7,4,5,2,3 (pairs p = c/2 >= 1 give 8 - 2p + (c & 1)).
template <class DF, class V>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> SelectFp4(DF df, V s) {
  const hn::RebindToSigned<DF> di;
  const auto a = hn::Abs(s);
  auto c = hn::Zero(di);
  for (int k = 0; k < 7; ++k)
    c = hn::Sub(c, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(a, hn::Set(df, fp4::Threshold(k))))));
  const auto p = hn::ShiftRight<1>(c);
  const auto paired = hn::Add(hn::Sub(hn::Set(di, 8), hn::Add(p, p)), hn::And(c, hn::Set(di, 1)));
  const auto mag = hn::IfThenElse(hn::Eq(p, hn::Zero(di)), c, paired);
  const auto sign = hn::IfThenElseZero(hn::RebindMask(di, hn::Lt(s, hn::Zero(df))), hn::Set(di, 8));
  return hn::Or(sign, mag);
}

// Whole blocks: x: [nblocks * B] f32 -> packed: [nblocks * B / 2], absmax: [nblocks].
// B is a multiple of 32 (so of 2N). fp4 selects the FP4 rule, else NF4.
void Quantize4BlocksImpl(bool fp4, const float* HWY_RESTRICT x, int64_t nblocks, int64_t B,
                         uint8_t* HWY_RESTRICT packed, float* HWY_RESTRICT absmax) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint8_t, decltype(di)> du8;
  const size_t N = hn::Lanes(df);
  float table[16];  // T[0..14], then +inf (index 15 is never looked up)
  for (int k = 0; k < 15; ++k) table[k] = nf4::Threshold(k);
  table[15] = hwy::HighestValue<float>();
  const Lut16<decltype(df)> thresholds(df, table);
  for (int64_t b = 0; b < nblocks; ++b) {
    const float* xb = x + b * B;
    auto m = hn::Zero(df);
    for (int64_t j = 0; j < B; j += static_cast<int64_t>(N)) m = hn::Max(m, hn::Abs(hn::LoadU(df, xb + j)));
    const float a = hn::GetLane(hn::MaxOfLanes(df, m));
    absmax[b] = a;
    const auto inv = hn::Set(df, 1.0f / a);
    uint8_t* out = packed + b * B / 2;
    for (int64_t j = 0; j < B; j += static_cast<int64_t>(2 * N)) {
      const auto s0 = hn::Mul(hn::LoadU(df, xb + j), inv);
      const auto s1 = hn::Mul(hn::LoadU(df, xb + j + static_cast<int64_t>(N)), inv);
      const auto c0 = fp4 ? SelectFp4(df, s0) : SelectNf4(df, thresholds, s0);
      const auto c1 = fp4 ? SelectFp4(df, s1) : SelectNf4(df, thresholds, s1);
      // Elements j, j+2, ... in the high nibble, j+1, j+3, ... in the low one.
      const auto bytes = hn::Or(hn::ShiftLeft<4>(hn::ConcatEven(di, c1, c0)), hn::ConcatOdd(di, c1, c0));
      hn::StoreU(hn::DemoteTo(du8, bytes), du8, out + j / 2);
    }
  }
}

// Whole blocks: out[i] = f32(lut[code_i] * scales[i / B]).
void Dequantize4BlocksImpl(const float* HWY_RESTRICT lut, const uint8_t* HWY_RESTRICT packed,
                           const float* HWY_RESTRICT scales, int64_t nblocks, int64_t B, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const size_t N = hn::Lanes(df);
  const Lut16<decltype(df)> table(df, lut);
  const auto mask = hn::Set(di, 0xF);
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto s = hn::Set(df, scales[b]);
    const uint8_t* p = packed + b * B / 2;
    float* o = out + b * B;
    for (int64_t j = 0; j < B / 2; j += static_cast<int64_t>(N)) {
      const auto q = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(du8, p + j)));
      const auto we = hn::Mul(table(df, hn::ShiftRight<4>(q)), s);
      const auto wo = hn::Mul(table(df, hn::And(q, mask)), s);
      hn::StoreInterleaved2(we, wo, df, o + 2 * j);
    }
  }
}

#endif  // vector targets

}  // namespace nibble::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_BLOCKWISE4_INL_H_
