// Per-target Highway body of the Q4_1 dequantizer; included once per target by q4_1.cc.
// Bit-exact with DequantizeRef: code * d is exact in f32 (<= 4 + 11 significant bits),
// so MulAdd (fused or not) rounds once, like the scalar code*d + m.
#if defined(NIBBLE_QUANT_FORMATS_Q4_1_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_FORMATS_Q4_1_INL_H_
#undef NIBBLE_QUANT_FORMATS_Q4_1_INL_H_
#else
#define NIBBLE_QUANT_FORMATS_Q4_1_INL_H_
#endif

#include <cstddef>
#include <cstring>

#include "core/float_convert.h"
#include "hwy/highway.h"
#include "quant/formats/q4_1/q4_1.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::q4_1::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// blocks: (num_elems / 32) Block; out: (num_elems) f32.
// Not noexcept: Highway 1.0.3's HWY_EXPORT table cannot hold noexcept function types.
void DequantizeImpl(const void* blocks, float* HWY_RESTRICT out, int64_t num_elems) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di32;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const size_t N = hn::Lanes(df);  // 4, 8 or 16 on x86: always divides 16
  const auto mask = hn::Set(di32, 0xF);
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const uint8_t* blk = bytes + b * sizeof(Block);
    uint16_t dm_bits[2];
    std::memcpy(dm_bits, blk, sizeof(dm_bits));
    const auto d = hn::Set(df, F16ToF32(dm_bits[0]));
    const auto m = hn::Set(df, F16ToF32(dm_bits[1]));
    const uint8_t* qs = blk + offsetof(Block, qs);
    float* y = out + b * kBlockElems;
    for (size_t j = 0; j < kBlockElems / 2; j += N) {
      const auto q = hn::PromoteTo(di32, hn::LoadU(du8, qs + j));
      const auto lo = hn::ConvertTo(df, hn::And(q, mask));
      const auto hi = hn::ConvertTo(df, hn::ShiftRight<4>(q));
      hn::StoreU(hn::MulAdd(lo, d, m), df, y + j);
      hn::StoreU(hn::MulAdd(hi, d, m), df, y + j + kBlockElems / 2);
    }
  }
}

}  // namespace nibble::quant::q4_1::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_FORMATS_Q4_1_INL_H_
