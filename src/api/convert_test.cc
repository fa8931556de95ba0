// nibble::Convert against the scalar reference conversions of core/float_convert.h
// (independent of the SIMD kernels Convert uses) on the real shared model files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/float_convert.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "nibble/convert.h"
#include "nibble/inspect.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble {
namespace {
using test::SharedData;
using test::TempDir;

float LoadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

TEST(Convert, GgufToBf16MatchesScalarReferenceBitForBit) {
  TempDir dir;
  const std::string in = SharedData("llama2c-stories260K/stories260K.gguf");
  const std::string out = dir.File("bf16.gguf");
  ConvertOptions o;
  o.dtype = DType::kBF16;
  const ConvertReport r = Convert(in, out, o);
  const io::GgufFile src = io::GgufFile::Open(in);
  const io::GgufFile dst = io::GgufFile::Open(out);
  ASSERT_EQ(dst.tensors().size(), src.tensors().size());
  EXPECT_EQ(dst.metadata().size(), src.metadata().size());
  EXPECT_EQ(r.num_converted, 48u);
  double max_err = 0;
  for (size_t i = 0; i < src.tensors().size(); ++i) {
    const auto& s = src.tensors()[i];
    const auto& d = dst.tensors()[i];
    ASSERT_EQ(d.name, s.name);
    ASSERT_EQ(d.dtype, DType::kBF16);
    ASSERT_EQ(d.shape, s.shape);
    const int64_t n = s.shape.NumElems();
    for (int64_t k = 0; k < n; ++k) {
      const float x = LoadF32(s.data.data() + 4 * k);
      uint16_t got;
      std::memcpy(&got, d.data.data() + 2 * k, 2);
      ASSERT_EQ(got, F32ToBF16(x)) << s.name << "[" << k << "]";
      max_err = std::max(max_err, std::fabs(double(BF16ToF32(got)) - double(x)));
    }
  }
  // The reported error is the same maximum, computed independently here.
  EXPECT_DOUBLE_EQ(r.max_abs_error, max_err);
  EXPECT_GT(r.mean_abs_error, 0.0);
  EXPECT_LT(r.out_file_bytes, r.in_file_bytes);
}

TEST(Convert, KeepNormsF32LeavesNormBytesUntouched) {
  TempDir dir;
  const std::string in = SharedData("llama2c-stories260K/stories260K.gguf");
  const std::string out = dir.File("f16.gguf");
  ConvertOptions o;
  o.dtype = DType::kF16;
  o.keep_norms_f32 = true;
  Convert(in, out, o);
  const io::GgufFile src = io::GgufFile::Open(in);
  const io::GgufFile dst = io::GgufFile::Open(out);
  int norms = 0;
  for (const auto& d : dst.tensors()) {
    const io::GgufTensor* s = src.FindTensor(d.name);
    ASSERT_NE(s, nullptr);
    if (d.name.find("norm") != std::string::npos) {
      ++norms;
      EXPECT_EQ(d.dtype, DType::kF32) << d.name;
      EXPECT_EQ(0, std::memcmp(d.data.data(), s->data.data(), s->data.size())) << d.name;
    } else {
      EXPECT_EQ(d.dtype, DType::kF16) << d.name;
    }
  }
  EXPECT_EQ(norms, 11);  // 5 layers x (attn_norm, ffn_norm) + output_norm
}

TEST(Convert, Llama2cToFp8SafetensorsMatchesReference) {
  TempDir dir;
  const std::string in = SharedData("llama2c-stories260K/stories260K.bin");
  const std::string out = dir.File("fp8.safetensors");
  ConvertOptions o;
  o.dtype = DType::kF8E4M3FN;
  const ConvertReport r = Convert(in, out, o);
  const io::Llama2cCheckpoint src = io::Llama2cCheckpoint::Open(in);
  const io::SafetensorsFile dst = io::SafetensorsFile::Open(out);
  EXPECT_EQ(dst.metadata().at("format"), "pt");
  ASSERT_EQ(dst.tensors().size(), src.tensors().size());
  double max_err = 0;
  for (const auto& s : src.tensors()) {
    const io::SafetensorsTensor* d = dst.FindTensor(s.name);
    ASSERT_NE(d, nullptr) << s.name;
    ASSERT_EQ(d->dtype, DType::kF8E4M3FN);
    for (int64_t k = 0; k < s.shape.NumElems(); ++k) {
      const float x = LoadF32(s.data.data() + 4 * k);
      ASSERT_EQ(d->data[static_cast<size_t>(k)], F32ToF8E4M3(x)) << s.name << "[" << k << "]";
      max_err = std::max(max_err, std::fabs(double(F8E4M3ToF32(d->data[static_cast<size_t>(k)])) - double(x)));
    }
  }
  EXPECT_DOUBLE_EQ(r.max_abs_error, max_err);
  EXPECT_EQ(r.num_nonfinite_out, 0u);
}

TEST(Convert, Tf32IsStoredAsF32WithRoundedMantissa) {
  TempDir dir;
  const std::string in = SharedData("hf-tiny-random-llama");
  const std::string out = dir.File("tf32.safetensors");
  ConvertOptions o;
  o.dtype = DType::kTF32;
  Convert(in, out, o);
  const io::SafetensorsFile src = io::SafetensorsFile::Open(SharedData("hf-tiny-random-llama/model.safetensors"));
  const io::SafetensorsFile dst = io::SafetensorsFile::Open(out);
  const auto* s = src.FindTensor("model.layers.0.mlp.up_proj.weight");
  const auto* d = dst.FindTensor("model.layers.0.mlp.up_proj.weight");
  ASSERT_TRUE(s && d);
  ASSERT_EQ(d->dtype, DType::kF32);
  for (int64_t k = 0; k < s->shape.NumElems(); ++k) {
    const float x = LoadF32(s->data.data() + 4 * k);
    ASSERT_EQ(F32Bits(LoadF32(d->data.data() + 4 * k)), F32Bits(F32ToTF32(x))) << k;
  }
}

TEST(Convert, UnsupportedTargetsFailAndLeaveNoFile) {
  TempDir dir;
  ConvertOptions o;
  o.dtype = DType::kF16;
  // GGUF output from a llama2.c input: its metadata mapping is not there.
  const std::string out1 = dir.File("a.gguf");
  EXPECT_THROW(Convert(SharedData("llama2c-stories260K/stories260K.bin"), out1, o), ConfigError);
  // An output extension nibble does not write.
  const std::string out2 = dir.File("a.bin");
  EXPECT_THROW(Convert(SharedData("llama2c-stories260K/stories260K.gguf"), out2, o), ConfigError);
  // An integer target dtype.
  o.dtype = DType::kI8;
  const std::string out3 = dir.File("b.safetensors");
  EXPECT_THROW(Convert(SharedData("llama2c-stories260K/stories260K.gguf"), out3, o), ConfigError);
  for (const auto& p : {out1, out2, out3}) {
    EXPECT_FALSE(std::filesystem::exists(p)) << p;
    EXPECT_FALSE(std::filesystem::exists(p + ".tmp")) << p;
  }
}

TEST(Inspect, ReportsArchitectureInHfNames) {
  const ModelInfo g = Inspect(SharedData("llama2c-stories260K/stories260K.gguf"));
  EXPECT_EQ(g.format, "gguf");
  EXPECT_EQ(g.tensors.size(), 48u);
  EXPECT_EQ(g.metadata.size(), 19u);
  auto field = [](const ModelInfo& m, const std::string& k) {
    for (const auto& [key, v] : m.architecture)
      if (key == k) return v;
    return std::string("<missing>");
  };
  EXPECT_EQ(field(g, "hidden_size"), "64");
  EXPECT_EQ(field(g, "num_hidden_layers"), "5");
  EXPECT_EQ(field(g, "num_key_value_heads"), "4");
  EXPECT_EQ(field(g, "max_position_embeddings"), "128");
  const ModelInfo b = Inspect(SharedData("llama2c-stories260K/stories260K.bin"));
  EXPECT_EQ(b.num_params, 260032u);
  EXPECT_EQ(field(b, "max_position_embeddings"), "512");
  const ModelInfo h = Inspect(SharedData("hf-tiny-random-llama"));
  EXPECT_EQ(h.tensors.size(), 21u);
  EXPECT_EQ(field(h, "tie_word_embeddings"), "false");
  EXPECT_NEAR(h.BytesPerParam(), 4.0, 1e-12);
}

}  // namespace
}  // namespace nibble
