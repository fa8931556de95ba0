// Properties of each DType: the one table (dtype.cc) where dtypes are enumerated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "nibble/dtype.h"
#include "nibble/error.h"

namespace nibble {

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // nibble name, e.g. "bf16"
  std::string_view safetensors;  // safetensors dtype string, empty if it has none
  int ggml_type;                 // ggml_type id in GGUF, -1 if GGUF cannot hold it
  uint32_t block_elems;          // elements per block (1 for dense types)
  uint32_t block_bytes;          // bytes per block (element size for dense types)
  bool is_float;                 // a dense floating type (f64 … f8)
};

// Row of the table for `t`.
const DTypeInfo& GetDTypeInfo(DType t);

inline bool IsPacked(DType t) { return GetDTypeInfo(t).block_elems > 1; }
inline bool IsFloat(DType t) { return GetDTypeInfo(t).is_float; }

// Bytes needed for `num_elems` elements; throws ShapeError when a packed type's
// block size does not divide num_elems or the byte count overflows.
size_t DTypeBytes(DType t, uint64_t num_elems);

std::optional<DType> DTypeFromSafetensors(std::string_view name);
std::optional<DType> DTypeFromGgml(uint32_t ggml_type);

}  // namespace nibble
