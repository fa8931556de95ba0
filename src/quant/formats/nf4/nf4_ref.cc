// NF4 scalar reference: the counting rule over the 15 kernel thresholds, blockwise
// absmax with reciprocal-then-multiply (spec §2.2-§2.6).
#include "quant/blockwise_ref.h"
#include "quant/formats/nf4/nf4.h"

namespace nibble::quant::nf4 {

const float kLut[16] = {Value(0), Value(1), Value(2),  Value(3),  Value(4),  Value(5),  Value(6),  Value(7),
                        Value(8), Value(9), Value(10), Value(11), Value(12), Value(13), Value(14), Value(15)};

uint8_t SelectRef(float s) noexcept {
  uint8_t code = 0;
  for (int k = 0; k < 15; ++k) code = static_cast<uint8_t>(code + (s > Threshold(k) ? 1 : 0));
  return code;  // a value equal to T[k] gets the lower code; NaN compares false: 0
}

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float*) noexcept {
  detail::QuantizeLut4Ref(x, n, blocksize, codes, absmax, SelectRef);
}

void DequantizeRef(const uint8_t* codes, const float* absmax, const float*, int64_t n, int64_t blocksize,
                   float* out) noexcept {
  detail::DequantizeLut4Ref(kLut, codes, absmax, n, blocksize, out);
}

}  // namespace nibble::quant::nf4
