// NF4 (NormalFloat-4): bitsandbytes' 4-bit codebook of N(0,1) quantiles, blockwise
// absmax (blocksize 64 by default), codes packed two per byte, element 2j in the high
// nibble. Constants are spec bnb-compatible-quantization.md §1.1 (table) and §2.3
// (decision thresholds), as binary32 bit patterns: this header is their only copy.
//
// Layout of a quantized tensor of n elements, blocksize B (spec §2.5, §6.1):
//   codes  [ceil(n/2)] u8   byte j = (code(2j) << 4) | code(2j+1); odd n: padding nibble 7
//   absmax [ceil(n/B)] f32  max |x| of each block (or its double-quantized codes, §3)
// Value: x̂_i = f32(NF4[code_i] * absmax[i / B]).
#pragma once

#include <bit>
#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant::nf4 {

// §1.1: code -> value, ascending; code 7 is exactly 0, codes 0 and 15 are -1 and +1.
inline constexpr uint32_t kValueBits[16] = {
    0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
    0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
};
// §2.3: T[k] separates codes k and k+1; a scaled value s gets #{k : s > T[k]}.
inline constexpr uint32_t kThresholdBits[15] = {
    0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
    0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
};
// The widest gap between neighbouring values (codes 0 and 1): 1 - 0.6961928.
inline constexpr double kMaxGap = 1.0 - 0.6961928009986877;

inline constexpr float Value(int code) { return std::bit_cast<float>(kValueBits[code]); }
inline constexpr float Threshold(int k) { return std::bit_cast<float>(kThresholdBits[k]); }

// The 16 values as floats, in code order (the dequantization table and quant_map).
extern const float kLut[16];

// Code of a scaled value s (NaN -> 0): the counting rule of §2.3.
uint8_t SelectRef(float s) noexcept;
// x: [n] f32 -> codes [ceil(n/2)], absmax [ceil(n/B)] (spec §2.2). zeros unused.
void QuantizeRef(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float* zeros) noexcept;
// Highway version of QuantizeRef (quant/blockwise4.h), bit-identical.
void Quantize(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax, float* zeros) noexcept;
void DequantizeRef(const uint8_t* codes, const float* absmax, const float* zeros, int64_t n, int64_t blocksize,
                   float* out) noexcept;

inline constexpr BlockwiseTraits kTraits = {
    .name = "nf4",
    .method = QuantMethod::kNf4,
    .code_bits = 4,
    .has_zero_point = false,
    .default_blocksize = 64,
    .lut = kLut,
    .max_gap = kMaxGap,
    .quantize_ref = &QuantizeRef,
    .quantize = &Quantize,
    .dequantize_ref = &DequantizeRef,
};

}  // namespace nibble::quant::nf4
