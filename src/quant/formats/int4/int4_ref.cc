// Int4 absmax scalar reference: q = rne(x * 7/absmax), stored as q + 8.
#include "quant/blockwise_ref.h"
#include "quant/formats/int4/int4.h"

namespace nibble::quant::int4 {

const float kLut[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales, float*) noexcept {
  detail::QuantizeSymmetricRef(x, n, blocksize, kQmax, scales, [&](int64_t i, int q) {
    const auto c = static_cast<uint8_t>(q + kZeroCode);
    codes[i >> 1] = (i & 1) ? static_cast<uint8_t>(codes[i >> 1] | c) : static_cast<uint8_t>(c << 4);
  });
  if (n & 1) codes[n >> 1] = static_cast<uint8_t>(codes[n >> 1] | kZeroCode);
}

void DequantizeRef(const uint8_t* codes, const float* scales, const float*, int64_t n, int64_t blocksize,
                   float* out) noexcept {
  detail::DequantizeLut4Ref(kLut, codes, scales, n, blocksize, out);
}

}  // namespace nibble::quant::int4
