// Q8_0: ggml's 8-bit symmetric block format (type id 8), 32 weights per f16 scale.
// Layout from ggml-common.h `block_q8_0` (ggml d99724f; spec gptq-lora-zero.md §4.7).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::q8_0 {

// One block, 34 bytes, little-endian:
//   bytes 0-1   d      f16 scale
//   bytes 2-33  qs[32] int8 codes, element j = qs[j]
// Value: x[j] = qs[j] * float(d).
struct Block {
  uint16_t d;     // f16 bits
  int8_t qs[32];  // codes in [-128, 127]; the quantizer writes [-127, 127]
};
static_assert(sizeof(Block) == 34, "block_q8_0 is 34 bytes");

inline constexpr uint32_t kBlockElems = 32;

// blocks: num_elems / 32 packed blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 32 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;
void Dequantize(const void* blocks, float* out, int64_t num_elems) noexcept;  // Highway
// ggml's quantize_row_q8_0_ref: d = amax/127, codes roundf(x/d) (half away from zero).
void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept;
// Analytic bound on max_j |x[j] - Dequantize(block)[j]| where block = QuantizeRef(x),
// for one block of 32 inputs x (derivation in q8_0_ref.cc).
double RoundTripBound(const float* x, const void* block) noexcept;

inline constexpr FormatTraits kTraits = {
    .name = "q8_0",
    .hf_name = "Q8_0",
    .dtype = DType::kQ8_0,
    .bits_per_weight = 8.5,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &Dequantize,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = &QuantizeRef,
};

}  // namespace nibble::quant::q8_0
