// nibble's ggml block formats against goldens made by the upstream `gguf` Python package
// (scripts/goldens/make_ggml_goldens.py, versions in tests/golden/ggml/VERSIONS.txt):
// dequantize (Ref and SIMD) of random blocks and of real SmolLM2 tensors, and quantize.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/float_convert.h"
#include "quant/registry.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::quant {
namespace {

// Dequantize tolerance: 0 ulp. gguf computes (f16 scale -> f32) * code (and then - min
// or + min) in f32 numpy arithmetic, the same operations as ggml's C and nibble's Ref;
// every product is exact in f32, so the single rounding of the final add is the same.
constexpr uint32_t kTolDequantUlp = 0;

std::vector<uint8_t> ReadGolden(const std::string& rel) {
  const std::string path = test::Golden(rel);
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "missing golden " << path << " (run scripts/goldens/make_ggml_goldens.py)";
    return {};
  }
  return test::ReadFileBytes(path);
}

std::vector<float> AsFloats(const std::vector<uint8_t>& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

uint32_t UlpDistance(float a, float b) {
  // Maps f32 bits onto a monotonic integer line; both inputs are finite here.
  auto key = [](float f) {
    const uint32_t u = F32Bits(f);
    return (u & 0x80000000u) ? 0x80000000u - (u & 0x7FFFFFFFu) : 0x80000000u + u;
  };
  const uint32_t ka = key(a), kb = key(b);
  return ka > kb ? ka - kb : kb - ka;
}

// Checks Ref and SIMD dequantize of `stem`.blocks against `stem`.f32.
void CheckDequantGolden(const FormatTraits& f, const std::string& stem) {
  SCOPED_TRACE(stem);
  const std::vector<uint8_t> blocks = ReadGolden("ggml/" + stem + ".blocks");
  const std::vector<float> want = AsFloats(ReadGolden("ggml/" + stem + ".f32"));
  ASSERT_FALSE(want.empty());
  ASSERT_EQ(want.size() % f.block_elems, 0u);
  ASSERT_EQ(blocks.size(), want.size() / f.block_elems * f.block_bytes);
  const auto n = static_cast<int64_t>(want.size());
  std::vector<float> ref(n), simd(n);
  f.dequantize_ref(blocks.data(), ref.data(), n);
  f.dequantize(blocks.data(), simd.data(), n);
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(want[i]));
    if ((UlpDistance(ref[i], want[i]) > kTolDequantUlp || UlpDistance(simd[i], want[i]) > kTolDequantUlp) &&
        ++bad <= 3)
      ADD_FAILURE() << "element " << i << ": gguf " << want[i] << " ref " << ref[i] << " simd " << simd[i];
  }
  EXPECT_EQ(bad, 0);
}

// Every registered format has a random-block golden from gguf.
TEST(GgmlGolden, DequantizeRandomBlocks) {
  for (const FormatTraits* f : AllFormats()) CheckDequantGolden(*f, std::string(f->name) + "_dequant");
}

// Real tensors: the first 4 rows of SmolLM2-135M-Instruct's token_embd (Q8_0) and two
// Q4_1 projections, as stored in the GGUF, against gguf's dequantization.
TEST(GgmlGolden, DequantizeSmolLM2Rows) {
  const struct {
    const char* stem;
    DType dtype;
  } kCases[] = {
      {"smollm2_token_embd", DType::kQ8_0},
      {"smollm2_blk_0_attn_q", DType::kQ4_1},
      {"smollm2_blk_0_ffn_down", DType::kQ4_1},
  };
  for (const auto& c : kCases) {
    const FormatTraits* f = FindFormat(c.dtype);
    ASSERT_NE(f, nullptr);
    CheckDequantGolden(*f, c.stem);
  }
}

// Quantize: bytes equal to gguf's quantize() for the types gguf 0.19 implements. Inputs
// include a zero block, a constant block, exact .5 ties and equal |max| of both signs.
TEST(GgmlGolden, QuantizeBytesEqualGguf) {
  const DType kQuantizable[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0};
  for (DType t : kQuantizable) {
    const FormatTraits* f = FindFormat(t);
    ASSERT_NE(f, nullptr);
    ASSERT_NE(f->quantize_ref, nullptr);
    const std::string stem = std::string(f->name) + "_quant";
    SCOPED_TRACE(stem);
    const std::vector<float> x = AsFloats(ReadGolden("ggml/" + stem + ".f32"));
    const std::vector<uint8_t> want = ReadGolden("ggml/" + stem + ".blocks");
    ASSERT_FALSE(x.empty());
    ASSERT_EQ(x.size() % f->block_elems, 0u);
    ASSERT_EQ(want.size(), x.size() / f->block_elems * f->block_bytes);
    std::vector<uint8_t> got(want.size());
    f->quantize_ref(x.data(), got.data(), static_cast<int64_t>(x.size()));
    int bad = 0;
    for (size_t b = 0; b < want.size() / f->block_bytes; ++b) {
      if (std::memcmp(got.data() + b * f->block_bytes, want.data() + b * f->block_bytes, f->block_bytes) != 0 &&
          ++bad <= 3)
        ADD_FAILURE() << "block " << b << " differs from gguf";
    }
    EXPECT_EQ(bad, 0);
  }
}

}  // namespace
}  // namespace nibble::quant
