// Q5_1: ggml's 5-bit asymmetric block format (type id 7), 32 weights per f16 scale
// and f16 minimum. Layout from ggml-common.h `block_q5_1` (ggml d99724f).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q5_1 {

// One block, 24 bytes, little-endian:
//   bytes 0-1   d      f16 scale
//   bytes 2-3   m      f16 minimum (the value of code 0)
//   bytes 4-7   qh     u32 (little-endian): bit j = bit 4 of the code of element j
//   bytes 8-23  qs[16] byte j: low nibble = bits 0-3 of element j, high nibble = element j+16
// Value: x[j] = code_j * float(d) + float(m), code_j in [0, 31], rounded once in f32.
struct Block {
  uint16_t d;      // f16 bits
  uint16_t m;      // f16 bits
  uint8_t qh[4];   // a u32 stored as bytes
  uint8_t qs[16];  // packed low 4 bits of the codes
};
static_assert(sizeof(Block) == 24, "block_q5_1 is 24 bytes");

inline constexpr uint32_t kBlockElems = 32;

// blocks: num_elems / 32 packed blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 32 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;
// ggml's quantize_row_q5_1_ref: d = (max - min)/31, m = min, code = trunc((x - min)/d + 0.5).
void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept;
// Analytic bound on max_j |x[j] - Dequantize(block)[j]| where block = QuantizeRef(x),
// for one block of 32 inputs x (derivation in q5_1_ref.cc).
double RoundTripBound(const float* x, const void* block) noexcept;

// No SIMD dequantizer yet: `dequantize` is the scalar reference.
inline constexpr FormatTraits kTraits = {
    .name = "q5_1",
    .hf_name = "Q5_1",
    .dtype = DType::kQ5_1,
    .bits_per_weight = 6.0,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = &QuantizeRef,
};

}  // namespace nibble::quant::q5_1
