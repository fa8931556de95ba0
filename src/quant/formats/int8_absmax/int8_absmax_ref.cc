// Int8 absmax scalar reference.
#include "quant/blockwise_ref.h"
#include "quant/formats/int8_absmax/int8_absmax.h"

namespace nibble::quant::int8_absmax {

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales, float*) noexcept {
  detail::QuantizeSymmetricRef(x, n, blocksize, kQmax, scales,
                               [&](int64_t i, int q) { codes[i] = static_cast<uint8_t>(static_cast<int8_t>(q)); });
}

void DequantizeRef(const uint8_t* codes, const float* scales, const float*, int64_t n, int64_t blocksize,
                   float* out) noexcept {
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(static_cast<int8_t>(codes[i])) * scales[i / blocksize];
}

}  // namespace nibble::quant::int8_absmax
