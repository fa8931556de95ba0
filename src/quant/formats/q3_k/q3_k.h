// Q3_K: ggml's 3-bit k-quant (type id 11): super-blocks of 256 weights in 16 sub-blocks
// of 16, each with a signed 6-bit scale under one f16 super-scale.
// Layout from ggml-common.h `block_q3_K` (ggml d99724f).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q3_k {

// One super-block, 110 bytes, little-endian (the f16 scale comes last):
//   bytes 0-31    hmask[32]   bit (4h + j) of hmask[l] = high bit of element 128h + 32j + l
//   bytes 32-95   qs[64]      low 2 bits, arranged as Q2_K's qs: bits 2j..2j+1 of
//                             qs[32h+l] = element 128h + 32j + l (h = 0..1, j = 0..3)
//   bytes 96-107  scales[12]  16 6-bit scales (stored +32), sub-block s = e / 16:
//                   low 4 bits  = s < 8 ? scales[s] & 0xF : scales[s-8] >> 4
//                   high 2 bits = (scales[8 + s%4] >> (2*(s/4))) & 3
//   bytes 108-109 d           f16 super-scale
// Value: x = (float(d) * (scale_s - 32)) * q with q = low2 - (high bit ? 0 : 4) in [-4, 3].
// (A set high bit means "no offset": ggml stores q + 4 and the mask marks q >= 0.)
struct Block {
  uint8_t hmask[32];   // high bits
  uint8_t qs[64];      // low 2 bits
  uint8_t scales[12];  // packed 6-bit scales
  uint16_t d;          // f16 bits
};
static_assert(sizeof(Block) == 110, "block_q3_K is 110 bytes");

inline constexpr uint32_t kBlockElems = 256;
inline constexpr int kScaleOffset = 32;

// The signed scale (scale_s - 32, in [-32, 31]) of sub-block s (0..15).
inline int UnpackScale(const uint8_t* scales, int s) {
  const int low = s < 8 ? (scales[s] & 0xF) : (scales[s - 8] >> 4);
  const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - kScaleOffset;
}

// blocks: num_elems / 256 packed super-blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 256 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;

// Read-only for now: no SIMD dequantizer (`dequantize` is the scalar reference), no
// quantizer.
inline constexpr FormatTraits kTraits = {
    .name = "q3_k",
    .hf_name = "Q3_K",
    .dtype = DType::kQ3_K,
    .bits_per_weight = 3.4375,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = nullptr,
};

}  // namespace nibble::quant::q3_k
