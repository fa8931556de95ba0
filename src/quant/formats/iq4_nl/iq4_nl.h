// IQ4_NL: ggml's 4-bit non-linear block format (type id 20): 32 weights per f16 scale,
// each code indexing a fixed 16-entry int8 codebook. Layout from ggml-common.h
// `block_iq4_nl` and table `kvalues_iq4nl` (ggml d99724f).
#pragma once

#include <array>
#include <cstdint>

#include "core/dtype.h"
#include "quant/format_traits.h"

namespace nibble::quant::iq4_nl {

// One block, 18 bytes, little-endian (the Q4_0 layout with a codebook):
//   bytes 0-1   d      f16 scale
//   bytes 2-17  qs[16] byte j: low nibble = code of element j, high nibble = element j+16
// Value: x[j] = kCodebook[code_j] * float(d).
struct Block {
  uint16_t d;      // f16 bits
  uint8_t qs[16];  // packed 4-bit codes
};
static_assert(sizeof(Block) == 18, "block_iq4_nl is 18 bytes");

inline constexpr uint32_t kBlockElems = 32;
// ggml's kvalues_iq4nl: sorted, asymmetric (-127 .. 113), denser near zero. Widest gap
// between neighbours: 24 (89 -> 113). The only copy in nibble.
inline constexpr std::array<int8_t, 16> kCodebook = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                     1,    13,   25,  38,  53,  69,  89,  113};
inline constexpr int kWidestGap = 24;

// blocks: num_elems / 32 packed blocks (any alignment); out: (num_elems) f32.
// num_elems must be a multiple of 32 (not checked).
void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept;
// ggml's quantize_row_iq4_nl_ref (no importance weights, ntry = -1): d0 = max/-127,
// codes = nearest codebook entry to x/d0, then d = least-squares scale with weights x^2.
void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept;
// Analytic bound on max_j |x[j] - Dequantize(block)[j]| where block = QuantizeRef(x),
// for one block of 32 inputs x (derivation in iq4_nl_ref.cc).
double RoundTripBound(const float* x, const void* block) noexcept;

// No SIMD dequantizer yet: `dequantize` is the scalar reference.
inline constexpr FormatTraits kTraits = {
    .name = "iq4_nl",
    .hf_name = "IQ4_NL",
    .dtype = DType::kIQ4_NL,
    .bits_per_weight = 4.5,
    .block_elems = kBlockElems,
    .block_bytes = sizeof(Block),
    .dequantize = &DequantizeRef,
    .dequantize_ref = &DequantizeRef,
    .quantize_ref = &QuantizeRef,
};

}  // namespace nibble::quant::iq4_nl
