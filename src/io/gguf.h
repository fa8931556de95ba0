// GGUF v2/v3 reader and writer (ggml's model container; spec: ggml docs/gguf.md).
//
// Byte layout (little-endian):
//   u32 magic "GGUF" (0x46554747) | u32 version (2 or 3) | u64 n_tensors | u64 n_kv
//   n_kv  x { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims (1..4) | u64 ne[n_dims] (each <= INT64_MAX) | u32 ggml_type | u64 offset }
//   zero padding to `general.alignment` (a u32 kv, default 32, a non-zero power of two)
//   tensor data: each tensor at data_start + offset, offset a multiple of the alignment,
//                tensors disjoint and inside the file; writers pad after each tensor
//   string = u64 length + UTF-8 bytes (no terminator)
//   value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte, 0 or 1), 8 string,
//                9 array (u32 elem_type + u64 count + elements; arrays may nest), 10 u64, 11 i64, 12 f64
// v2 and v3 share this layout (v1 had u32 counts and is rejected); v3 files may be
// big-endian, which nibble rejects (the version field then reads byte-swapped).
// Shapes: GGUF lists ne[0] first (the fastest-varying extent); nibble stores the
// row-major (numpy/PyTorch) order, i.e. ne reversed.
#pragma once

#include "io/atomic_writer.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "io/mapped_file.h"

namespace nibble::io {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint64_t kGgufDefaultAlignment = 32;  // docs/gguf.md, `general.alignment`
inline constexpr uint32_t kGgufMaxDims = 4;            // GGML_MAX_DIMS
inline constexpr int kGgufMaxArrayDepth = 8;           // nibble's bound on arrays of arrays
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
inline constexpr uint32_t kNumGgufTypes = 13;
std::string_view GgufTypeName(GgufType t);  // "u8", …, "array"
// Fewest bytes one value of `t` can take (string: its u64 length; array: u32 type + u64 count).
uint64_t GgufMinValueBytes(GgufType t);

struct GgufValue;
struct GgufArray {
  GgufType elem_type = GgufType::kU8;
  std::vector<GgufValue> items;
};
struct GgufValue {
  GgufType type = GgufType::kU8;
  // Integers of every width widen into int64/uint64, f32/f64 into double, bool into bool.
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;
};
struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;                     // row-major (ne reversed)
  uint64_t offset = 0;             // relative to the data section
  std::span<const uint8_t> data;   // points into the mapped file
};

class GgufFile {
 public:
  // Maps and parses `path`. Throws IoError / FormatError naming the file.
  static GgufFile Open(const std::string& path);
  // Parses bytes already in memory (fuzzing, tests); `source` names them in errors.
  // The bytes must outlive the returned object.
  static GgufFile Parse(std::span<const uint8_t> bytes, const std::string& source);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  const std::vector<GgufKv>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufKv* FindKey(std::string_view key) const;
  const GgufTensor* FindTensor(std::string_view name) const;
  const std::string& source() const { return source_; }

 private:
  std::shared_ptr<MappedFile> file_;  // keeps `data` spans valid when opened from disk
  std::string source_;
  uint32_t version_ = 3;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kv_;
  std::vector<GgufTensor> tensors_;
};

// A tensor to write: raw bytes already in `dtype`'s layout.
struct GgufWriteTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;  // row-major
  std::span<const uint8_t> data;
  // When set, called once, right before the tensor is written, for its bytes (then
  // `data` is ignored); the span must stay valid until the next call. This lets a
  // converter stream a model one tensor at a time instead of holding all of it.
  std::function<std::span<const uint8_t>()> produce;
};

// Writes a GGUF v3 file atomically (temp name, fsync, rename). `general.alignment`
// in `kv`, if present, sets the alignment (default 32). Throws ShapeError/FormatError
// for a dtype GGUF cannot hold or a size that does not match the shape.
void WriteGguf(const std::string& path, const std::vector<GgufKv>& kv, const std::vector<GgufWriteTensor>& tensors,
               Existing existing);

}  // namespace nibble::io
