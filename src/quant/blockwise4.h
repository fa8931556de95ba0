// Fast 4-bit blockwise quantize (NF4, FP4) and dequantize (every 4-bit table format):
// Highway over whole blocks, the scalar Ref on the partial last block and on targets
// without 8/16 f32 lanes. Bit-identical to the format's Ref (tested on every target).
#pragma once

#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant {

// x: [n] f32 -> codes [ceil(n/2)], absmax [ceil(n/B)] (NF4 or FP4 only).
void QuantizeNf4Fp4(QuantMethod m, const float* x, int64_t n, int64_t blocksize, uint8_t* codes,
                    float* absmax) noexcept;
// Any 4-bit table format `f`: out[i] = f32(lut[code_i] * scales[i / B]) for i in [0, n).
void DequantizeLut4(const BlockwiseTraits& f, const uint8_t* codes, const float* scales, int64_t n,
                    int64_t blocksize, float* out) noexcept;

}  // namespace nibble::quant
