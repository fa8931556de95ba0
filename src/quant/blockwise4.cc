// Dispatch of the 4-bit blockwise kernels (blockwise4-inl.h): one dynamic dispatch per
// call over all whole blocks; the partial last block goes through the Ref.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/blockwise4.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "quant/blockwise4-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {

// Whole blocks through the vector body; returns how many were done (0 on scalar targets
// or when B is not a multiple of 32).
int64_t Quantize4Whole(bool fp4, const float* x, int64_t nblocks, int64_t B, uint8_t* packed, float* absmax) {
#if !NB_LUT16_VECTOR
  return 0;
#else
  if (B % 32 != 0) return 0;
  Quantize4BlocksImpl(fp4, x, nblocks, B, packed, absmax);
  return nblocks;
#endif
}

int64_t Dequantize4Whole(const float* lut, const uint8_t* packed, const float* scales, int64_t nblocks, int64_t B,
                         float* out) {
#if !NB_LUT16_VECTOR
  return 0;
#else
  if (B % 32 != 0) return 0;
  Dequantize4BlocksImpl(lut, packed, scales, nblocks, B, out);
  return nblocks;
#endif
}

}  // namespace nibble::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "quant/formats/fp4/fp4.h"
#include "quant/formats/nf4/nf4.h"
#include "quant/blockwise4.h"

namespace nibble::quant {

HWY_EXPORT(Quantize4Whole);
HWY_EXPORT(Dequantize4Whole);

void QuantizeNf4Fp4(QuantMethod m, const float* x, int64_t n, int64_t B, uint8_t* codes, float* absmax) noexcept {
  const bool fp4 = m == QuantMethod::kFp4;
  const int64_t done = NB_DYNAMIC_DISPATCH(Quantize4Whole)(fp4, x, n / B, B, codes, absmax);
  const int64_t e0 = done * B;  // even: B is
  if (e0 < n) {
    const auto ref = fp4 ? &fp4::QuantizeRef : &nf4::QuantizeRef;
    ref(x + e0, n - e0, B, codes + e0 / 2, absmax + done, nullptr);
  }
}

void DequantizeLut4(const BlockwiseTraits& f, const uint8_t* codes, const float* scales, int64_t n, int64_t B,
                    float* out) noexcept {
  const int64_t done = NB_DYNAMIC_DISPATCH(Dequantize4Whole)(f.lut, codes, scales, n / B, B, out);
  const int64_t e0 = done * B;
  if (e0 < n) f.dequantize_ref(codes + e0 / 2, scales + done, nullptr, n - e0, B, out + e0);
}

}  // namespace nibble::quant
#endif  // HWY_ONCE
