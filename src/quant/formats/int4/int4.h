// Int4 absmax: symmetric 4-bit integer codes -7..7 per block of 64 (the QLoRA paper's
// Int4 baseline, Table 2/Figure 3). A nibble-only format: written with
// "quant_method": "nibble" (docs/FORMATS.md).
//   codes  [ceil(n/2)] u8   nibble = q + 8 (q in -7..7), element 2j in the high nibble;
//                           odd n: padding nibble 8 (zero)
//   scales [ceil(n/B)] f32  step d = f32(absmax / 7) of each block
// Value: x̂_i = f32((nibble_i - 8) * d[i / B]); nibble 0 (-8) is never written but decodes.
#pragma once

#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant::int4 {

inline constexpr int kQmax = 7;
inline constexpr int kZeroCode = 8;

extern const float kLut[16];  // nibble -> nibble - 8

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales, float* zeros) noexcept;
void DequantizeRef(const uint8_t* codes, const float* scales, const float* zeros, int64_t n, int64_t blocksize,
                   float* out) noexcept;

// In units of absmax the codes are k/7: gap 1/7.
inline constexpr BlockwiseTraits kTraits = {
    .name = "int4",
    .method = QuantMethod::kInt4,
    .code_bits = 4,
    .has_zero_point = false,
    .default_blocksize = 64,
    .lut = kLut,
    .max_gap = 1.0 / 7.0,
    .quantize_ref = &QuantizeRef,
    .quantize = &QuantizeRef,
    .dequantize_ref = &DequantizeRef,
};

}  // namespace nibble::quant::int4
