// Per-target helpers shared by the 4-bit kernels: a 16-entry f32 table lookup in
// registers (one vpermps on AVX-512; two lookups and a blend on AVX2). Only for vector
// targets with 8 or 16 f32 lanes (callers take a scalar path elsewhere).
//
// Contracts (docs/ARCHITECTURE.md, "Trusted on every target"): operator() takes indices
// in [0, 16), which is what Highway's IndicesFromVec requires (HWY_IS_DEBUG_BUILD
// asserts it). Low4() takes any 32-bit lanes and looks up their low 4 bits; it relies
// only on what the instructions document (Intel SDM): vpermps ymm uses index bits 2:0,
// vpermps zmm bits 3:0, vblendvps the sign bit. Elsewhere it masks first.
#if defined(NIBBLE_QUANT_LUT16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_LUT16_INL_H_
#undef NIBBLE_QUANT_LUT16_INL_H_
#else
#define NIBBLE_QUANT_LUT16_INL_H_
#endif

#include "hwy/highway.h"

// NB_LUT16_VECTOR: 1 on targets whose f32 vectors have exactly 8 (AVX2) or 16 (AVX-512)
// lanes, the only widths these kernels are written for; every other target (scalar,
// EMU128, 4-lane SSE4/NEON, scalable vectors) takes the plain loops. Redefined for each
// target pass of foreach_target.
#undef NB_LUT16_VECTOR
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128 && !HWY_HAVE_SCALABLE && \
    (HWY_MAX_BYTES == 32 || HWY_MAX_BYTES == 64)
#define NB_LUT16_VECTOR 1
#else
#define NB_LUT16_VECTOR 0
#endif

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The table lut[16] held in registers.
template <class DF>
struct Lut16 {
  static_assert(hn::MaxLanes(DF()) == 8 || hn::MaxLanes(DF()) == 16, "Lut16 needs 8 or 16 f32 lanes");
  hn::Vec<DF> lo, hi;  // entries 0..N-1 and, with 8 lanes, 8..15
  Lut16(DF df, const float* lut) : lo(hn::LoadU(df, lut)), hi(hn::MaxLanes(df) == 8 ? hn::LoadU(df, lut + 8) : lo) {}
  // From registers: entries 0..N-1 and (8 lanes) 8..15; with 16 lanes `h` is unused.
  Lut16(hn::Vec<DF> l, hn::Vec<DF> h) : lo(l), hi(h) {}

  // lut[idx] per lane; precondition: every idx in [0, 16).
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

  // lut[idx & 15] per lane, for any idx (the wide GEMV's shifted code words).
  template <class VI>
  HWY_INLINE hn::Vec<DF> Low4(DF df, VI idx) const {
#if HWY_TARGET == HWY_AVX2
    if constexpr (hn::MaxLanes(DF()) == 8) {
      // vpermps: bits 2:0 of each index; vblendvps: bit 3 moved into the sign bit.
      const __m256 l = _mm256_permutevar8x32_ps(lo.raw, idx.raw), h = _mm256_permutevar8x32_ps(hi.raw, idx.raw);
      return hn::Vec<DF>{_mm256_blendv_ps(l, h, _mm256_castsi256_ps(_mm256_slli_epi32(idx.raw, 28)))};
    }
#elif HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    if constexpr (hn::MaxLanes(DF()) == 16) {
      return hn::Vec<DF>{_mm512_permutexvar_ps(idx.raw, lo.raw)};  // vpermps zmm: bits 3:0 of each index
    }
#endif
    const hn::RebindToSigned<DF> di;
    return (*this)(df, hn::And(hn::BitCast(di, idx), hn::Set(di, 15)));
  }
};

}  // namespace nibble::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_LUT16_INL_H_
