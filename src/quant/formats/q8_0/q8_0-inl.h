// Per-target Highway body of the Q8_0 dequantizer; included once per target by q8_0.cc.
// Bit-exact with DequantizeRef: each output is one f32 product code * f16 scale, and
// that product is exact (<= 8 + 11 significant bits), so lane order cannot matter.
#if defined(NIBBLE_QUANT_FORMATS_Q8_0_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_QUANT_FORMATS_Q8_0_INL_H_
#undef NIBBLE_QUANT_FORMATS_Q8_0_INL_H_
#else
#define NIBBLE_QUANT_FORMATS_Q8_0_INL_H_
#endif

#include <cstddef>
#include <cstring>

#include "core/float_convert.h"
#include "hwy/highway.h"
#include "quant/formats/q8_0/q8_0.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::q8_0::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// blocks: (num_elems / 32) Block; out: (num_elems) f32.
// Not noexcept: Highway 1.0.3's HWY_EXPORT table cannot hold noexcept function types.
void DequantizeImpl(const void* blocks, float* HWY_RESTRICT out, int64_t num_elems) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di32;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const size_t N = hn::Lanes(df);  // 4, 8 or 16 on x86: always divides 32
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const uint8_t* blk = bytes + b * sizeof(Block);
    uint16_t d_bits;
    std::memcpy(&d_bits, blk, sizeof(d_bits));
    const auto d = hn::Set(df, F16ToF32(d_bits));
    const auto* qs = reinterpret_cast<const int8_t*>(blk + offsetof(Block, qs));
    float* y = out + b * kBlockElems;
    for (size_t j = 0; j < kBlockElems; j += N) {
      const auto q = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(di8, qs + j)));
      hn::StoreU(hn::Mul(q, d), df, y + j);
    }
  }
}

}  // namespace nibble::quant::q8_0::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_QUANT_FORMATS_Q8_0_INL_H_
