// NF4 fast quantizer: the shared 4-bit Highway body (quant/blockwise4.h).
#include "quant/formats/nf4/nf4.h"

#include "quant/blockwise4.h"

namespace nibble::quant::nf4 {

void Quantize(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float*) noexcept {
  QuantizeNf4Fp4(QuantMethod::kNf4, x, n, blocksize, codes, absmax);
}

}  // namespace nibble::quant::nf4
