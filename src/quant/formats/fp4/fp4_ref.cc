// FP4 scalar reference: the kernel's decision tree with its truncated constants
// (spec §2.3), blockwise absmax as NF4.
#include <cmath>

#include "quant/blockwise_ref.h"
#include "quant/formats/fp4/fp4.h"

namespace nibble::quant::fp4 {

const float kLut[16] = {Magnitude(0),  Magnitude(1),  Magnitude(2),  Magnitude(3),  Magnitude(4),  Magnitude(5),
                        Magnitude(6),  Magnitude(7),  -Magnitude(0), -Magnitude(1), -Magnitude(2), -Magnitude(3),
                        -Magnitude(4), -Magnitude(5), -Magnitude(6), -Magnitude(7)};
const float kQuantMap[16] = {Magnitude(0),  Magnitude(1),  Magnitude(2),  Magnitude(3),  Magnitude(4),  Magnitude(5),
                             Magnitude(6),  Magnitude(7),  0.0f,          -Magnitude(1), -Magnitude(2), -Magnitude(3),
                             -Magnitude(4), -Magnitude(5), -Magnitude(6), -Magnitude(7)};

uint8_t SelectRef(float s) noexcept {
  const uint8_t sign = s < 0.0f ? 8 : 0;
  const float a = std::fabs(s);
  uint8_t mag;
  if (a > Threshold(3)) {
    if (a > Threshold(5)) {
      mag = a > Threshold(6) ? 0b011 : 0b010;
    } else {
      mag = a > Threshold(4) ? 0b101 : 0b100;
    }
  } else if (a > Threshold(1)) {
    mag = a > Threshold(2) ? 0b111 : 0b110;
  } else {
    mag = a > Threshold(0) ? 0b001 : 0b000;
  }
  return static_cast<uint8_t>(sign | mag);
}

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float*) noexcept {
  detail::QuantizeLut4Ref(x, n, blocksize, codes, absmax, SelectRef);
}

void DequantizeRef(const uint8_t* codes, const float* absmax, const float*, int64_t n, int64_t blocksize,
                   float* out) noexcept {
  detail::DequantizeLut4Ref(kLut, codes, absmax, n, blocksize, out);
}

}  // namespace nibble::quant::fp4
