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
#include "quant/registry.h"
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

TEST(Convert, StreamsOneTensorAtATime) {
  TempDir dir;
  ConvertOptions o;
  o.dtype = DType::kBF16;
  const ConvertReport r = Convert(SharedData("llama2c-stories260K/stories260K.gguf"), dir.File("s.gguf"), o);
  // The largest tensors are the two [512, 64] f32 embeddings (128 KiB); a bf16 copy
  // is 64 KiB. Holding the whole converted model would need out_tensor_bytes (~572 KiB).
  EXPECT_LE(r.peak_alloc_bytes, 2u * 512u * 64u * 4u);
  EXPECT_LT(r.peak_alloc_bytes, r.out_tensor_bytes / 4);
}

TEST(Convert, QuantizedGgufTensorsAreDequantizedWithTheFormatRef) {
  // A GGUF holding one Q8_0 and one Q4_0 tensor (quantized by nibble's ggml-reference
  // quantizers), converted to f32 and to f16: the f32 output must equal the format's
  // scalar DequantizeRef, and f16 must equal F32ToF16 of it.
  TempDir dir;
  constexpr int kRows = 3, kCols = 64;
  std::vector<float> x(kRows * kCols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i)) * (1.0f + float(i % 7));
  std::vector<std::vector<uint8_t>> packed;
  std::vector<io::GgufWriteTensor> wt;
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    const quant::FormatTraits* f = quant::FindFormat(t);
    ASSERT_NE(f, nullptr);
    packed.emplace_back(DTypeBytes(t, x.size()));
    f->quantize_ref(x.data(), packed.back().data(), int64_t(x.size()));
  }
  wt.push_back({"a.weight", DType::kQ8_0, Shape{kRows, kCols}, packed[0]});
  wt.push_back({"b.weight", DType::kQ4_0, Shape{kRows, kCols}, packed[1]});
  const std::string in = dir.File("q.gguf");
  io::WriteGguf(in, {}, wt, nibble::io::Existing::kReplace);
  ConvertOptions o;
  for (DType target : {DType::kF32, DType::kF16}) {
    o.dtype = target;
    const std::string out = dir.File(std::string("o-") + std::string(DTypeName(target)) + ".gguf");
    const ConvertReport r = Convert(in, out, o);
    EXPECT_EQ(r.num_converted, 2u);
    const io::GgufFile g = io::GgufFile::Open(out);
    for (size_t k = 0; k < 2; ++k) {
      std::vector<float> ref(x.size());
      quant::FindFormat(wt[k].dtype)->dequantize_ref(packed[k].data(), ref.data(), int64_t(ref.size()));
      const io::GgufTensor& got = g.tensors()[k];
      ASSERT_EQ(got.dtype, target);
      for (size_t i = 0; i < ref.size(); ++i) {
        if (target == DType::kF32) {
          ASSERT_EQ(F32Bits(LoadF32(got.data.data() + 4 * i)), F32Bits(ref[i])) << k << " " << i;
        } else {
          uint16_t h;
          std::memcpy(&h, got.data.data() + 2 * i, 2);
          ASSERT_EQ(h, F32ToF16(ref[i])) << k << " " << i;
        }
      }
    }
    if (target == DType::kF32) {
      EXPECT_EQ(r.max_abs_error, 0.0);  // exact: the dequantized values themselves
    }
  }
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
  ASSERT_EQ(dst.tensors().size(), src.tensors().size() - 2);  // without freq_cis_real/imag
  EXPECT_EQ(r.num_params, 260032u);
  double max_err = 0;
  for (const auto& s : src.tensors()) {
    if (s.name.starts_with("freq_cis")) {
      EXPECT_EQ(dst.FindTensor(s.name), nullptr);
      continue;
    }
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

// The fp16 pitfalls are named, not met as infinities later: a tensor with values beyond
// ±65504, and an rms_norm_eps below f16's smallest normal (hf-tiny-random-llama's 1e-6 is an
// f16 subnormal; stories260K's GGUF keeps 1e-5 under its llama.* key). bf16 has neither.
TEST(Convert, F16PitfallsAreNamed) {
  TempDir dir;
  const std::string big = dir.File("big.safetensors");
  const float values[4] = {1.0f, 70000.0f, -1e6f, 65504.0f};
  io::WriteSafetensors(big, {{"layer.big", DType::kF32, Shape{4}, {reinterpret_cast<const uint8_t*>(values), 16}}},
                       {{"format", "pt"}}, io::Existing::kRefuse);
  ConvertOptions o;
  o.dtype = DType::kF16;
  ConvertReport r = Convert(big, dir.File("big16.safetensors"), o);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("tensor 'layer.big': 2 values beyond f16's finite range (±65504)"), std::string::npos)
      << r.warnings[0];
  r = Convert(SharedData("hf-tiny-random-llama"), dir.File("tiny16.safetensors"), o);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("rms_norm_eps 1e-06 (config.json field rms_norm_eps) is below f16's smallest normal"),
            std::string::npos)
      << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("subnormal"), std::string::npos);
  r = Convert(SharedData("llama2c-stories260K/stories260K.gguf"), dir.File("s16.gguf"), o);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("GGUF key llama.attention.layer_norm_rms_epsilon"), std::string::npos) << r.warnings[0];
  o.dtype = DType::kBF16;
  EXPECT_TRUE(Convert(big, dir.File("big_bf16.safetensors"), o).warnings.empty());
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
  }
  EXPECT_EQ(test::CountTemporaries(dir.path()), 0);
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
