// Int8 zero-point (asymmetric) quantization per tensor or per row (LLM.int8() paper
// §2.1, "zeropoint quantization"): the block's range [min, max] is stretched onto
// -127..127, so a one-sided distribution (e.g. after ReLU) uses all 255 codes instead of
// half of them. A nibble-only format ("quant_method": "nibble", docs/FORMATS.md).
//   codes  [n] i8           q = clamp(rne(f32(x * ndx)) - zp, -127, 127)
//   scales [ceil(n/B)] f32  d = f32(1 / ndx), where ndx = f32(254 / f32(max - min))
//   zeros  [ceil(n/B)] f32  zp = rne(f32(min * ndx)) + 127  (an integer held in f32)
// Value: x̂_i = f32(f32(q_i + zp) * d). min and max include 0 (so 0 is exact); a block
// whose range is 0 stores d = 0, zp = 0 and codes 0.
#pragma once

#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant::int8_zeropoint {

void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales, float* zeros) noexcept;
void DequantizeRef(const uint8_t* codes, const float* scales, const float* zeros, int64_t n, int64_t blocksize,
                   float* out) noexcept;

// Step d covers (max - min) / 254 = 2 * absmax-equivalent / 254: gap 1/127 of the range's half.
inline constexpr BlockwiseTraits kTraits = {
    .name = "int8-zeropoint",
    .method = QuantMethod::kInt8ZeroPoint,
    .code_bits = 8,
    .has_zero_point = true,
    .default_blocksize = 0,  // per row
    .lut = nullptr,
    .max_gap = 2.0 / 254.0,
    .quantize_ref = &QuantizeRef,
    .quantize = &QuantizeRef,
    .dequantize_ref = &DequantizeRef,
};

}  // namespace nibble::quant::int8_zeropoint
