// Per-target helpers shared by the 4-bit kernels: a 16-entry f32 table lookup in
// registers (one vpermps on AVX-512; two lookups and a blend on AVX2). Only for vector
// targets with 8 or 16 f32 lanes (callers take a scalar path elsewhere).
#if defined(NIBBLE_QUANT_LUT16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_LUT16_INL_H_
#undef NIBBLE_QUANT_LUT16_INL_H_
#else
#define NIBBLE_QUANT_LUT16_INL_H_
#endif

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// True where the 4-bit kernels vectorise: 8 (AVX2) or 16 (AVX-512) f32 lanes.
template <class DF>
constexpr bool Lut16Vectorised(DF df) {
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
  (void)df;
  return false;
#else
  return hn::MaxLanes(df) == 8 || hn::MaxLanes(df) == 16;
#endif
}

// The table lut[16] held in registers.
template <class DF>
struct Lut16 {
  hn::Vec<DF> lo, hi;  // entries 0..N-1 and, with 8 lanes, 8..15
  Lut16(DF df, const float* lut) : lo(hn::LoadU(df, lut)), hi(hn::MaxLanes(df) == 8 ? hn::LoadU(df, lut + 8) : lo) {}
  // lut[idx] per lane, idx in [0, 16) as i32 lanes.
  template <class VI>
  HWY_INLINE hn::Vec<DF> operator()(DF df, VI idx) const {
    if constexpr (hn::MaxLanes(DF()) == 16) {
      return hn::TableLookupLanes(lo, hn::IndicesFromVec(df, idx));
    } else {
      const hn::RebindToSigned<DF> di;
      const auto seven = hn::Set(di, 7);
      const auto i7 = hn::IndicesFromVec(df, hn::And(idx, seven));
      return hn::IfThenElse(hn::RebindMask(df, hn::Gt(idx, seven)), hn::TableLookupLanes(hi, i7),
                            hn::TableLookupLanes(lo, i7));
    }
  }
};

}  // namespace nibble::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_LUT16_INL_H_
