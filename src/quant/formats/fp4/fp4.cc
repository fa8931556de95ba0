// FP4 fast quantizer: the shared 4-bit Highway body (quant/blockwise4.h).
#include "quant/formats/fp4/fp4.h"

#include "quant/blockwise4.h"

namespace nibble::quant::fp4 {

void Quantize(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float*) noexcept {
  QuantizeNf4Fp4(QuantMethod::kFp4, x, n, blocksize, codes, absmax);
}

}  // namespace nibble::quant::fp4
