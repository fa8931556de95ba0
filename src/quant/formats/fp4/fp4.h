// FP4: bitsandbytes' 4-bit sign-magnitude float code (not OCP E2M1): bit 3 is the sign,
// bits 2..0 index a magnitude in the order 0, 0.0625, 8, 12, 4, 6, 2, 3, divided by 12
// (spec bnb-compatible-quantization.md §1.3). Same blockwise layout as NF4:
//   codes  [ceil(n/2)] u8   element 2j in the high nibble; odd n: padding nibble 0
//   absmax [ceil(n/B)] f32
// Value: x̂_i = f32(sign * magnitude[code_i & 7] * absmax[i / B]); code 8 decodes to -0.0.
// The serialized quant_map holds +0.0 at index 8 (Python wrote an integer -0).
#pragma once

#include <bit>
#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant::fp4 {

// §1.3: normalised magnitude of bits 2..0.
inline constexpr uint32_t kMagnitudeBits[8] = {
    0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
};
// §2.3: the kernel's truncated thresholds (NOT the exact midpoints), ascending.
inline constexpr uint32_t kThresholdBits[7] = {
    0x3b2aaab9,  // 0.00260417  mag 000 | 001
    0x3db00000,  // 0.0859375   001 | 110
    0x3e555555,  // 0.20833333  110 | 111
    0x3e955555,  // 0.29166667  111 | 100
    0x3ed55556,  // 0.4166667   100 | 101
    0x3f155550,  // 0.583333    101 | 010
    0x3f555555,  // 0.8333333   010 | 011
};
// Widest gap between neighbouring magnitudes: 2/3 -> 1.
inline constexpr double kMaxGap = 1.0 / 3.0;

inline constexpr float Magnitude(int bits3) { return std::bit_cast<float>(kMagnitudeBits[bits3]); }
inline constexpr float Threshold(int k) { return std::bit_cast<float>(kThresholdBits[k]); }

// Dequantization table in code order: code 8 is -0.0 (what the kernels compute).
extern const float kLut[16];
// The quant_map bitsandbytes serializes: as kLut but +0.0 at index 8.
extern const float kQuantMap[16];

// The decision tree of §2.3 (sign first: s < 0 -> 8; NaN and -0.0 get sign 0).
uint8_t SelectRef(float s) noexcept;
void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float* zeros) noexcept;
// Highway version of QuantizeRef (quant/blockwise4.h), bit-identical.
void Quantize(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float* zeros) noexcept;
void DequantizeRef(const uint8_t* codes, const float* absmax, const float* zeros, int64_t n, int64_t blocksize,
                   float* out) noexcept;

inline constexpr BlockwiseTraits kTraits = {
    .name = "fp4",
    .method = QuantMethod::kFp4,
    .code_bits = 4,
    .has_zero_point = false,
    .default_blocksize = 64,
    .lut = kLut,
    .max_gap = kMaxGap,
    .quantize_ref = &QuantizeRef,
    .quantize = &Quantize,
    .dequantize_ref = &DequantizeRef,
};

}  // namespace nibble::quant::fp4
