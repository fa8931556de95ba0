// Q4_0: ggml's 4-bit symmetric block format (type id 2), 32 weights per f16 scale.
// Layout from ggml-common.h `block_q4_0` (ggml d99724f; spec gptq-lora-zero.md §4.7).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q4_0 {

// One block, 18 bytes, little-endian:
//   bytes 0-1   d      f16 scale
//   bytes 2-17  qs[16] byte j: low nibble = code of element j, high nibble = element j+16
// Value: x[j] = (code_j - 8) * float(d), code_j in [0, 15].
// (Low nibbles hold the first half of the block, not every other element.)
struct Block {
  uint16_t d;      // f16 bits
  uint8_t qs[16];  // packed 4-bit codes
};
static_assert(sizeof(Block) == 18, "block_q4_0 is 18 bytes");

inline constexpr uint32_t kBlockElems = 32;
inline constexpr int kCodeOffset = 8;  // codes are stored with +8 so they are unsigned

// blocks: num_elems / 32 packed blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 32 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;
void Dequantize(const void* blocks, float* out, int64_t num_elems) noexcept;  // Highway
// ggml's quantize_row_q4_0_ref: d = (signed value of largest magnitude) / -8,
// code = min(15, trunc(x/d + 8.5)).
void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept;
// Analytic bound on max_j |x[j] - Dequantize(block)[j]| where block = QuantizeRef(x),
// for one block of 32 inputs x (derivation in q4_0_ref.cc).
double RoundTripBound(const float* x, const void* block) noexcept;

inline constexpr FormatTraits kTraits = {
    .name = "q4_0",
    .hf_name = "Q4_0",
    .dtype = DType::kQ4_0,
    .bits_per_weight = 4.5,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &Dequantize,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = &QuantizeRef,
};

}  // namespace nibble::quant::q4_0
