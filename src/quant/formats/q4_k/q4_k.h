// Q4_K: ggml's 4-bit k-quant (type id 12): super-blocks of 256 weights in 8 sub-blocks
// of 32, each with a 6-bit scale and 6-bit min under two f16 super-scales.
// Layout from ggml-common.h `block_q4_K` (ggml d99724f; spec gptq-lora-zero.md §4.7).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q4_k {

// One super-block, 144 bytes, little-endian:
//   bytes 0-1    d           f16 super-scale of the sub-block scales
//   bytes 2-3    dmin        f16 super-scale of the sub-block mins
//   bytes 4-15   scales[12]  8 6-bit scales sc_s and 8 6-bit mins m_s, packed:
//                  s < 4:  sc_s = scales[s] & 63,  m_s = scales[s+4] & 63
//                  s >= 4: sc_s = (scales[s+4] & 0xF) | (scales[s-4] >> 6) << 4
//                          m_s  = (scales[s+4] >> 4)  | (scales[s]   >> 6) << 4
//   bytes 16-143 qs[128]     chunk c = 0..3 (64 values) uses qs[32c .. 32c+31]:
//                  low nibble of qs[32c+l] = element 64c+l (sub-block 2c),
//                  high nibble             = element 64c+32+l (sub-block 2c+1)
// Value in sub-block s: x = (float(d)*sc_s) * q - float(dmin)*m_s, q in [0, 15].
struct Block {
  uint16_t d;          // f16 bits
  uint16_t dmin;       // f16 bits
  uint8_t scales[12];  // packed 6-bit scales and mins
  uint8_t qs[128];     // packed 4-bit codes
};
static_assert(sizeof(Block) == 144, "block_q4_K is 144 bytes");

inline constexpr uint32_t kBlockElems = 256;

// The 6-bit scale and min of sub-block s (0..7) from the packed 12 bytes; shared by Q5_K.
inline void UnpackScaleMin(const uint8_t* scales, int s, uint8_t* sc, uint8_t* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4));
  }
}

// blocks: num_elems / 256 packed super-blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 256 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;

// Read-only for now: no SIMD dequantizer (`dequantize` is the scalar reference) and no
// quantizer (ggml's make_qkx2_quants search is not ported yet).
inline constexpr FormatTraits kTraits = {
    .name = "q4_k",
    .hf_name = "Q4_K",
    .dtype = DType::kQ4_K,
    .bits_per_weight = 4.5,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = nullptr,
};

}  // namespace nibble::quant::q4_k
