// Q2_K: ggml's 2-bit k-quant (type id 10): super-blocks of 256 weights in 16 sub-blocks
// of 16, each with a 4-bit scale and 4-bit min under two f16 super-scales.
// Layout from ggml-common.h `block_q2_K` (ggml d99724f).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q2_k {

// One super-block, 84 bytes, little-endian (the f16 scales come last):
//   bytes 0-15   scales[16]  sub-block s: low nibble = scale sc_s, high nibble = min m_s
//   bytes 16-79  qs[64]      half h = 0..1 (128 values) uses qs[32h .. 32h+31]; bits
//                            2j..2j+1 of qs[32h+l] = element 128h + 32j + l (j = 0..3)
//   bytes 80-81  d           f16 super-scale of the scales
//   bytes 82-83  dmin        f16 super-scale of the mins
// Element e sits in sub-block s = e / 16. Value: x = (float(d)*sc_s) * q - float(dmin)*m_s,
// q in [0, 3].
struct Block {
  uint8_t scales[16];  // 4-bit scale | 4-bit min << 4
  uint8_t qs[64];      // packed 2-bit codes
  uint16_t d;          // f16 bits
  uint16_t dmin;       // f16 bits
};
static_assert(sizeof(Block) == 84, "block_q2_K is 84 bytes");

inline constexpr uint32_t kBlockElems = 256;

// blocks: num_elems / 256 packed super-blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 256 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;

// Read-only for now: no SIMD dequantizer (`dequantize` is the scalar reference), no
// quantizer.
inline constexpr FormatTraits kTraits = {
    .name = "q2_k",
    .hf_name = "Q2_K",
    .dtype = DType::kQ2_K,
    .bits_per_weight = 2.625,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = nullptr,
};

}  // namespace nibble::quant::q2_k
