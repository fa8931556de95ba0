// Q5_0: ggml's 5-bit symmetric block format (type id 6), 32 weights per f16 scale.
// Layout from ggml-common.h `block_q5_0` (ggml d99724f).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q5_0 {

// One block, 22 bytes, little-endian:
//   bytes 0-1   d      f16 scale
//   bytes 2-5   qh     u32 (little-endian): bit j = bit 4 of the code of element j
//   bytes 6-21  qs[16] byte j: low nibble = bits 0-3 of element j, high nibble = element j+16
// Value: x[j] = (code_j - 16) * float(d), code_j in [0, 31].
struct Block {
  uint16_t d;      // f16 bits
  uint8_t qh[4];   // a u32 stored as bytes, so the block needs only 2-byte alignment
  uint8_t qs[16];  // packed low 4 bits of the codes
};
static_assert(sizeof(Block) == 22, "block_q5_0 is 22 bytes");

inline constexpr uint32_t kBlockElems = 32;
inline constexpr int kCodeOffset = 16;

// blocks: num_elems / 32 packed blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 32 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;
// ggml's quantize_row_q5_0_ref: d = (signed value of largest magnitude) / -16,
// code = min(31, trunc(x/d + 16.5)).
void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept;
// Analytic bound on max_j |x[j] - Dequantize(block)[j]| where block = QuantizeRef(x),
// for one block of 32 inputs x (derivation in q5_0_ref.cc).
double RoundTripBound(const float* x, const void* block) noexcept;

// No SIMD dequantizer yet: `dequantize` is the scalar reference.
inline constexpr FormatTraits kTraits = {
    .name = "q5_0",
    .hf_name = "Q5_0",
    .dtype = DType::kQ5_0,
    .bits_per_weight = 5.5,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = &QuantizeRef,
};

}  // namespace nibble::quant::q5_0
