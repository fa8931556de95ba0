// FormatTraits: one row per storage format (C8), the only view of a format that
// the upper layers get. Formats are enumerated only in registry.cc.
// Layer rule: quant depends on core and kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/dtype.h"

namespace nibble::quant {

struct FormatTraits {
  std::string_view name;     // nibble name, equal to DTypeName(dtype), e.g. "q4_0"
  std::string_view hf_name;  // upstream name (ggml type name, e.g. "Q4_0")
  DType dtype;               // the packed DType this format stores
  double bits_per_weight;    // scales included, e.g. 4.5 for Q4_0
  uint32_t block_elems;      // elements per block
  uint32_t block_bytes;      // bytes per block
  // Dequantize num_elems (a multiple of block_elems) elements from packed blocks.
  // noexcept, no validation: callers check sizes first.
  void (*dequantize)(const void* blocks, float* out, int64_t num_elems) noexcept;
  // Scalar oracle of the same.
  void (*dequantize_ref)(const void* blocks, float* out, int64_t num_elems) noexcept;
  // Quantize num_elems f32 values into blocks (ggml's reference quantizer), or
  // nullptr where the format is read-only in nibble for now.
  void (*quantize_ref)(const float* in, void* blocks, int64_t num_elems) noexcept;
};

}  // namespace nibble::quant
