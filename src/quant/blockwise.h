// Blockwise quantization over the flat (row-major) order of a tensor, the layout of
// bitsandbytes (spec bnb-compatible-quantization.md §2.1): one scale per block of
// `blocksize` consecutive elements (the last block may be partial; blocks may straddle
// rows), codes of 4 bits (two per byte, element 2j in the HIGH nibble) or 8 bits.
// Every format here dequantizes as value = lut[code] * scale (4-bit) or
// (code - zero) * scale (8-bit), so one GEMV kernel serves them all.
// Formats are enumerated only in registry.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nibble::quant {

// Quantization methods (C5: strings only at the edges, see MethodName/ParseMethod).
enum class QuantMethod : uint8_t {
  kNf4,            // bitsandbytes NF4, blocksize 64, f32 absmax (optionally double-quantized)
  kFp4,            // bitsandbytes FP4, same layout
  kInt4,           // symmetric int4 absmax, codes -7..7 (QLoRA's Int4 baseline)
  kInt8Absmax,     // symmetric int8 absmax per tensor / row / block
  kInt8ZeroPoint,  // asymmetric int8 with a zero point per tensor / row
  kLlmInt8,        // LLM.int8(): vector-wise int8 weights (SCB) + outlier decomposition
  kNumMethods,
};
inline constexpr int kNumQuantMethods = static_cast<int>(QuantMethod::kNumMethods);

// Bytes holding the codes of n elements: ceil(n/2) for 4-bit, n for 8-bit.
inline constexpr int64_t CodeBytes(int code_bits, int64_t n) { return code_bits == 4 ? (n + 1) / 2 : n; }
// Number of blocks of `blocksize` covering n elements.
inline constexpr int64_t NumBlocks(int64_t n, int64_t blocksize) { return (n + blocksize - 1) / blocksize; }

// 4-bit packing (bitsandbytes' order): element 2j in bits 7..4 of byte j, 2j+1 in bits 3..0.
inline uint8_t Code4At(const uint8_t* packed, int64_t i) {
  const uint8_t b = packed[i >> 1];
  return (i & 1) ? (b & 0xF) : (b >> 4);
}

// One row of the format table (C8). Scales are f32 per block; `zeros` is used only by
// formats with a zero point (nullptr otherwise). All functions are noexcept and never
// validate: callers check n > 0, blocksize > 0 and buffer sizes first.
struct BlockwiseTraits {
  std::string_view name;      // the CLI's --method name, e.g. "nf4"
  QuantMethod method;
  int code_bits;              // 4 or 8
  bool has_zero_point;
  int64_t default_blocksize;  // 64 for the 4-bit formats; 0 = one block per row
  // Dequantized value of each code before scaling (4-bit formats; 16 entries), in code
  // order. nullptr for 8-bit formats, whose value is (int8 code - zero) * scale.
  const float* lut;
  // Widest gap between neighbouring normalised code values: the round-trip bound of
  // conformance test §8.4 is scale_max * max_gap / 2 per element.
  double max_gap;
  // x: [n] f32 -> codes: [CodeBytes(n)], scales: [NumBlocks(n, B)] f32, zeros: same or nullptr.
  void (*quantize_ref)(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales,
                       float* zeros) noexcept;
  // The same result as quantize_ref, bit for bit, through Highway where the format has
  // a vector body (NF4, FP4); equal to quantize_ref otherwise.
  void (*quantize)(const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* scales,
                   float* zeros) noexcept;
  // codes/scales/zeros as above -> out: [n] f32.
  void (*dequantize_ref)(const uint8_t* codes, const float* scales, const float* zeros, int64_t n, int64_t blocksize,
                         float* out) noexcept;
};

}  // namespace nibble::quant
