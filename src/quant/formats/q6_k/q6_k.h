// Q6_K: ggml's 6-bit k-quant (type id 14): super-blocks of 256 weights in 16 sub-blocks
// of 16, each with an int8 scale under one f16 super-scale.
// Layout from ggml-common.h `block_q6_K` (ggml d99724f).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q6_k {

// One super-block, 210 bytes, little-endian (the f16 scale comes last). Half h = 0..1
// holds elements 128h .. 128h+127, with l = 0..31:
//   bytes 0-127   ql[128]    low 4 bits: ql[64h+l] low nibble  = element 128h + l
//                                        ql[64h+32+l] low nibble = element 128h + 32 + l
//                                        ql[64h+l] high nibble = element 128h + 64 + l
//                                        ql[64h+32+l] high nibble = element 128h + 96 + l
//   bytes 128-191 qh[64]     high 2 bits: bits 2k..2k+1 of qh[32h+l] = element 128h + 32k + l
//   bytes 192-207 scales[16] int8 scale of sub-block s = e / 16
//   bytes 208-209 d          f16 super-scale
// Value: x = (float(d) * scale_s) * (q - 32), q in [0, 63].
struct Block {
  uint8_t ql[128];    // low 4 bits
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // sub-block scales
  uint16_t d;         // f16 bits
};
static_assert(sizeof(Block) == 210, "block_q6_K is 210 bytes");

inline constexpr uint32_t kBlockElems = 256;
inline constexpr int kCodeOffset = 32;

// blocks: num_elems / 256 packed super-blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 256 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;

// Read-only for now: no SIMD dequantizer (`dequantize` is the scalar reference), no
// quantizer.
inline constexpr FormatTraits kTraits = {
    .name = "q6_k",
    .hf_name = "Q6_K",
    .dtype = DType::kQ6_K,
    .bits_per_weight = 6.5625,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = nullptr,
};

}  // namespace nibble::quant::q6_k
