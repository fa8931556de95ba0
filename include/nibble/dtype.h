// Element types nibble stores and computes with: every safetensors dtype,
// tf32, and the packed block types of GGUF. Names and sizes live in src/core/dtype.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "nibble/api.h"

namespace nibble {

enum class DType : uint8_t {
  // Dense floats.
  kF64,
  kF32,
  kF16,
  kBF16,
  kTF32,  // stored as 4 bytes (an f32 whose low 13 mantissa bits are zero)
  kF8E4M3FN,
  kF8E5M2,
  // Integers and bool.
  kI8,
  kU8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kBool,
  // Packed ggml block types (see src/quant/formats/<name>/README.md).
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kIQ4_NL,
  kNumDTypes,
};
inline constexpr int kNumDTypes = static_cast<int>(DType::kNumDTypes);

// Lower-case nibble name ("f16", "bf16", "f8_e4m3fn", "q4_0").
NIBBLE_API std::string_view DTypeName(DType t);
// Inverse of DTypeName; nullopt for an unknown name.
NIBBLE_API std::optional<DType> ParseDType(std::string_view name);

}  // namespace nibble
