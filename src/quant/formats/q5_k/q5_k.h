// Q5_K: ggml's 5-bit k-quant (type id 13): the Q4_K super-block plus one high bit per
// weight. Layout from ggml-common.h `block_q5_K` (ggml d99724f).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q5_k {

// One super-block, 176 bytes, little-endian:
//   bytes 0-1    d           f16 super-scale of the sub-block scales
//   bytes 2-3    dmin        f16 super-scale of the sub-block mins
//   bytes 4-15   scales[12]  8 6-bit scales and 8 6-bit mins, packed as in Q4_K
//                            (q4_k::UnpackScaleMin)
//   bytes 16-47  qh[32]      bit s of qh[l] = bit 4 of element 32s+l (sub-block s)
//   bytes 48-175 qs[128]     low 4 bits, arranged as Q4_K's qs: chunk c = 0..3,
//                  low nibble of qs[32c+l] = element 64c+l, high nibble = 64c+32+l
// Value in sub-block s: x = (float(d)*sc_s) * q - float(dmin)*m_s, q in [0, 31].
struct Block {
  uint16_t d;          // f16 bits
  uint16_t dmin;       // f16 bits
  uint8_t scales[12];  // packed 6-bit scales and mins
  uint8_t qh[32];      // high bits
  uint8_t qs[128];     // low 4 bits
};
static_assert(sizeof(Block) == 176, "block_q5_K is 176 bytes");

inline constexpr uint32_t kBlockElems = 256;

// blocks: num_elems / 256 packed super-blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 256 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;

// Read-only for now: no SIMD dequantizer (`dequantize` is the scalar reference), no
// quantizer.
inline constexpr FormatTraits kTraits = {
    .name = "q5_k",
    .hf_name = "Q5_K",
    .dtype = DType::kQ5_K,
    .bits_per_weight = 5.5,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = nullptr,
};

}  // namespace nibble::quant::q5_k
