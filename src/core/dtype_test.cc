// The DType table against the published sizes: safetensors dtype names
// (huggingface/safetensors), ggml type ids and block sizes (ggml.h, ggml-common.h).
#include <gtest/gtest.h>

#include "core/dtype.h"

namespace nibble {
namespace {

TEST(DType, NamesRoundTrip) {
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto t = static_cast<DType>(i);
    const auto parsed = ParseDType(DTypeName(t));
    ASSERT_TRUE(parsed.has_value()) << DTypeName(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_FALSE(ParseDType("f17").has_value());
}

TEST(DType, SafetensorsNamesCoverEveryFormatDtype) {
  // Every dtype string of the safetensors format.
  const std::pair<const char*, DType> kAll[] = {
      {"F64", DType::kF64},   {"F32", DType::kF32},   {"F16", DType::kF16},         {"BF16", DType::kBF16},
      {"F8_E4M3", DType::kF8E4M3FN}, {"F8_E5M2", DType::kF8E5M2}, {"I8", DType::kI8}, {"U8", DType::kU8},
      {"I16", DType::kI16},   {"U16", DType::kU16},   {"I32", DType::kI32},         {"U32", DType::kU32},
      {"I64", DType::kI64},   {"U64", DType::kU64},   {"BOOL", DType::kBool}};
  for (const auto& [name, t] : kAll) {
    ASSERT_TRUE(DTypeFromSafetensors(name).has_value()) << name;
    EXPECT_EQ(*DTypeFromSafetensors(name), t) << name;
  }
  EXPECT_FALSE(DTypeFromSafetensors("TF32").has_value());
  EXPECT_FALSE(DTypeFromSafetensors("Q4_0").has_value());
}

TEST(DType, GgmlIdsAndBlockSizes) {
  // ggml_type ids from ggml.h and sizeof(block_*) from ggml-common.h.
  struct Row {
    uint32_t id;
    DType t;
    uint32_t elems, bytes;
  };
  const Row kRows[] = {{0, DType::kF32, 1, 4},       {1, DType::kF16, 1, 2},       {2, DType::kQ4_0, 32, 18},
                       {3, DType::kQ4_1, 32, 20},    {6, DType::kQ5_0, 32, 22},    {7, DType::kQ5_1, 32, 24},
                       {8, DType::kQ8_0, 32, 34},    {10, DType::kQ2_K, 256, 84},  {11, DType::kQ3_K, 256, 110},
                       {12, DType::kQ4_K, 256, 144}, {13, DType::kQ5_K, 256, 176}, {14, DType::kQ6_K, 256, 210},
                       {20, DType::kIQ4_NL, 32, 18}, {24, DType::kI8, 1, 1},       {25, DType::kI16, 1, 2},
                       {26, DType::kI32, 1, 4},      {27, DType::kI64, 1, 8},      {28, DType::kF64, 1, 8},
                       {30, DType::kBF16, 1, 2}};
  for (const Row& r : kRows) {
    ASSERT_TRUE(DTypeFromGgml(r.id).has_value()) << r.id;
    EXPECT_EQ(*DTypeFromGgml(r.id), r.t) << r.id;
    EXPECT_EQ(GetDTypeInfo(r.t).block_elems, r.elems) << r.id;
    EXPECT_EQ(GetDTypeInfo(r.t).block_bytes, r.bytes) << r.id;
  }
  EXPECT_FALSE(DTypeFromGgml(4).has_value());   // removed Q4_2
  EXPECT_FALSE(DTypeFromGgml(99).has_value());
}

TEST(DType, BytesForElementCounts) {
  EXPECT_EQ(DTypeBytes(DType::kBF16, 7), 14u);
  EXPECT_EQ(DTypeBytes(DType::kQ8_0, 64), 68u);
  EXPECT_EQ(DTypeBytes(DType::kQ4_K, 512), 288u);
  EXPECT_THROW(DTypeBytes(DType::kQ4_K, 100), ShapeError);
  EXPECT_THROW(DTypeBytes(DType::kF64, uint64_t{1} << 62), ShapeError);
}

}  // namespace
}  // namespace nibble
