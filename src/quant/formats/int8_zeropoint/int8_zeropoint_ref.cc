// Int8 zero-point scalar reference.
#include <algorithm>
#include <cmath>

#include "quant/formats/int8_zeropoint/int8_zeropoint.h"

namespace nibble::quant::int8_zeropoint {

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales, float* zeros) noexcept {
  for (int64_t b = 0; b < NumBlocks(n, blocksize); ++b) {
    const int64_t begin = b * blocksize, end = std::min(n, begin + blocksize);
    float lo = 0.0f, hi = 0.0f;  // the range always holds 0, so 0 dequantizes exactly
    for (int64_t i = begin; i < end; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    const float range = hi - lo;
    if (!(range > 0.0f)) {
      scales[b] = 0.0f;
      zeros[b] = 0.0f;
      for (int64_t i = begin; i < end; ++i) codes[i] = 0;
      continue;
    }
    const float ndx = 254.0f / range;
    const float zp = std::nearbyint(lo * ndx) + 127.0f;
    scales[b] = 1.0f / ndx;
    zeros[b] = zp;
    for (int64_t i = begin; i < end; ++i) {
      const float q = std::clamp(std::nearbyint(x[i] * ndx) - zp, -127.0f, 127.0f);
      codes[i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

void DequantizeRef(const uint8_t* codes, const float* scales, const float* zeros, int64_t n, int64_t blocksize,
                   float* out) noexcept {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = i / blocksize;
    out[i] = (static_cast<float>(static_cast<int8_t>(codes[i])) + zeros[b]) * scales[b];
  }
}

}  // namespace nibble::quant::int8_zeropoint
