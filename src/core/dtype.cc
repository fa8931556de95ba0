// The DType table: names, safetensors and ggml ids, block sizes. The only place
// where dtypes are listed; a static_assert keeps it in step with the enum.
#include "core/dtype.h"

#include <fmt/core.h>

#include <array>
#include <limits>

namespace nibble {
namespace {

// ggml block sizes: QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = 32, QK_K = 256, IQ4_NL 32.
// Block bytes follow ggml-common.h (f16 scales).
constexpr DTypeInfo kTable[] = {
    {DType::kF64, "f64", "F64", 28, 1, 8, true},
    {DType::kF32, "f32", "F32", 0, 1, 4, true},
    {DType::kF16, "f16", "F16", 1, 1, 2, true},
    {DType::kBF16, "bf16", "BF16", 30, 1, 2, true},
    {DType::kTF32, "tf32", "", -1, 1, 4, true},
    {DType::kF8E4M3FN, "f8_e4m3fn", "F8_E4M3", -1, 1, 1, true},
    {DType::kF8E5M2, "f8_e5m2", "F8_E5M2", -1, 1, 1, true},
    {DType::kI8, "i8", "I8", 24, 1, 1, false},
    {DType::kU8, "u8", "U8", -1, 1, 1, false},
    {DType::kI16, "i16", "I16", 25, 1, 2, false},
    {DType::kU16, "u16", "U16", -1, 1, 2, false},
    {DType::kI32, "i32", "I32", 26, 1, 4, false},
    {DType::kU32, "u32", "U32", -1, 1, 4, false},
    {DType::kI64, "i64", "I64", 27, 1, 8, false},
    {DType::kU64, "u64", "U64", -1, 1, 8, false},
    {DType::kBool, "bool", "BOOL", -1, 1, 1, false},
    {DType::kQ4_0, "q4_0", "", 2, 32, 18, false},
    {DType::kQ4_1, "q4_1", "", 3, 32, 20, false},
    {DType::kQ5_0, "q5_0", "", 6, 32, 22, false},
    {DType::kQ5_1, "q5_1", "", 7, 32, 24, false},
    {DType::kQ8_0, "q8_0", "", 8, 32, 34, false},
    {DType::kQ2_K, "q2_k", "", 10, 256, 84, false},
    {DType::kQ3_K, "q3_k", "", 11, 256, 110, false},
    {DType::kQ4_K, "q4_k", "", 12, 256, 144, false},
    {DType::kQ5_K, "q5_k", "", 13, 256, 176, false},
    {DType::kQ6_K, "q6_k", "", 14, 256, 210, false},
    {DType::kIQ4_NL, "iq4_nl", "", 20, 32, 18, false},
};
static_assert(std::size(kTable) == kNumDTypes, "kTable must list every DType");

constexpr bool TableInOrder() {
  for (size_t i = 0; i < std::size(kTable); ++i)
    if (static_cast<size_t>(kTable[i].dtype) != i) return false;
  return true;
}
static_assert(TableInOrder(), "kTable rows must follow the enum order");

}  // namespace

const DTypeInfo& GetDTypeInfo(DType t) { return kTable[static_cast<size_t>(t)]; }

std::string_view DTypeName(DType t) {
  const auto i = static_cast<size_t>(t);
  return i < std::size(kTable) ? kTable[i].name : std::string_view("invalid");
}

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& row : kTable)
    if (row.name == name) return row.dtype;
  return std::nullopt;
}

std::optional<DType> DTypeFromSafetensors(std::string_view name) {
  for (const auto& row : kTable)
    if (!row.safetensors.empty() && row.safetensors == name) return row.dtype;
  return std::nullopt;
}

std::optional<DType> DTypeFromGgml(uint32_t ggml_type) {
  for (const auto& row : kTable)
    if (row.ggml_type >= 0 && static_cast<uint32_t>(row.ggml_type) == ggml_type) return row.dtype;
  return std::nullopt;
}

size_t DTypeBytes(DType t, uint64_t num_elems) {
  const DTypeInfo& info = GetDTypeInfo(t);
  if (num_elems % info.block_elems != 0)
    throw ShapeError(fmt::format("dtype {}: {} elements is not a multiple of the block size {}", info.name,
                                 num_elems, info.block_elems));
  const uint64_t blocks = num_elems / info.block_elems;
  if (blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes)
    throw ShapeError(fmt::format("dtype {}: {} elements overflow a 64-bit byte count", info.name, num_elems));
  return static_cast<size_t>(blocks * info.block_bytes);
}

}  // namespace nibble
