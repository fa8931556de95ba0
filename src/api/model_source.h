// ModelSource: any supported model file opened behind one view (format, metadata
// for display, tensors as spans into the mapped files). Layer rule: api may use all of src/.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "core/shape.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "nibble/inspect.h"

namespace nibble::api {

enum class FileFormat { kSafetensors, kGguf, kLlama2c };
std::string_view FileFormatName(FileFormat f);

struct SourceTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::span<const uint8_t> data;
  // A derived table, not a parameter (llama2.c's legacy RoPE tables): not counted
  // as parameters, not written by convert.
  bool is_buffer = false;
};

class ModelSource {
 public:
  // Detects the format (directory → safetensors; "GGUF" magic → GGUF; a u64 header
  // length followed by '{' → safetensors; ".bin" → llama2.c) and opens it.
  static ModelSource Open(const std::string& path);

  FileFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  const std::vector<SourceTensor>& tensors() const { return tensors_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // Set for GGUF inputs only.
  const io::GgufFile* gguf() const { return gguf_ ? &*gguf_ : nullptr; }
  const io::SafetensorsCheckpoint* safetensors() const { return st_ ? &*st_ : nullptr; }
  const io::Llama2cCheckpoint* llama2c() const { return l2c_ ? &*l2c_ : nullptr; }

 private:
  FileFormat format_ = FileFormat::kSafetensors;
  std::string path_;
  uint64_t file_bytes_ = 0;
  std::vector<SourceTensor> tensors_;
  std::optional<io::GgufFile> gguf_;
  std::optional<io::SafetensorsCheckpoint> st_;
  std::optional<io::Llama2cCheckpoint> l2c_;
};

// The values of `t` as f32: a view of the mapped bytes when they already are aligned
// f32 (or tf32), else a decoded copy in `scratch` (f64, f16, bf16, fp8, ggml blocks).
// Throws ShapeError when the bytes do not hold the shape and ConfigError for a dtype
// that is not a number (`file` and the tensor named).
const float* SourceAsF32(ExecContext& ctx, const SourceTensor& t, const std::string& file, Tensor& scratch);

// Human-readable rendering of a GGUF value; arrays longer than `max_items` are
// abbreviated as "[N items: a, b, c, …]".
std::string GgufValueToString(const io::GgufValue& v, size_t max_items = 8);
std::string GgufValueTypeName(const io::GgufValue& v);
// `s` with control characters, quotes and backslashes escaped, cut to about
// `max_bytes` (at a UTF-8 character boundary) with "…" appended when longer.
std::string EscapeForDisplay(std::string_view s, size_t max_bytes);

}  // namespace nibble::api
