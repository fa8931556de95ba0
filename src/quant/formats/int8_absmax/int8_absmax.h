// Int8 absmax: symmetric int8 codes -127..127, one scale per block of the flat order;
// per tensor (blocksize = n), per row (blocksize = in) or per block. "0.3 -> 38": with
// absmax 1 the scale is 127 and rne(0.3 * 127) = 38; the largest magnitude maps to 127.
// A nibble-only format ("quant_method": "nibble", docs/FORMATS.md).
//   codes  [n] i8           q = rne(f32(x * f32(127 / absmax)))
//   scales [ceil(n/B)] f32  step d = f32(absmax / 127)
// Value: x̂_i = f32(q_i * d[i / B]).
#pragma once

#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant::int8_absmax {

inline constexpr int kQmax = 127;

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales, float* zeros) noexcept;
void DequantizeRef(const uint8_t* codes, const float* scales, const float* zeros, int64_t n, int64_t blocksize,
                   float* out) noexcept;

inline constexpr BlockwiseTraits kTraits = {
    .name = "int8-absmax",
    .method = QuantMethod::kInt8Absmax,
    .code_bits = 8,
    .has_zero_point = false,
    .default_blocksize = 0,  // per row
    .lut = nullptr,
    .max_gap = 1.0 / 127.0,
    .quantize_ref = &QuantizeRef,
    .quantize = &QuantizeRef,
    .dequantize_ref = &DequantizeRef,
};

}  // namespace nibble::quant::int8_absmax
