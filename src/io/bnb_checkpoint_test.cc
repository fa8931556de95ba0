// Spec bnb-compatible-quantization.md §8.5 (files) and TV5 (JSON number formatting):
// TV4 and TV6 written to safetensors and read back tensor by tensor and byte by byte;
// quant_storage = bfloat16 (byte reinterpretation), bf16 absmax, weight_format absent /
// 0 / 2, missing pieces and bad JSON each rejected with a message naming the tensor.
#include "io/bnb_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "core/float_convert.h"
#include "nibble/error.h"
#include "quant/qgemv.h"
#include "util/temp_dir.h"

namespace nibble::io {
namespace {

using quant::QTensor;
using quant::QuantMethod;

TEST(BnbCheckpoint, TV5PythonFloatRepr) {
  EXPECT_EQ(PythonFloatRepr(1.75f), "1.75");
  EXPECT_EQ(PythonFloatRepr(3.0f), "3.0");
  EXPECT_EQ(PythonFloatRepr(0.1f), "0.10000000149011612");
  EXPECT_EQ(PythonFloatRepr(0.001f), "0.0010000000474974513");
  EXPECT_EQ(PythonFloatRepr(0.0123f), "0.012299999594688416");
  EXPECT_EQ(PythonFloatRepr(1e-4f), "9.999999747378752e-05");
  EXPECT_EQ(PythonFloatRepr(1e-5f), "9.999999747378752e-06");
  EXPECT_EQ(PythonFloatRepr(1e16f), "1.0000000272564224e+16");
  EXPECT_EQ(PythonFloatRepr(-0.0f), "-0.0");
  EXPECT_EQ(PythonFloatRepr(123456.0f), "123456.0");
  EXPECT_EQ(PythonFloatRepr(-2.5f), "-2.5");
}

QTensor Tv4(Allocator& alloc, bool double_quant) {
  const float a[6] = {0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f};
  std::vector<float> w(6 * 64);
  for (int r = 0; r < 6; ++r)
    for (int i = 0; i < 64; ++i) w[r * 64 + i] = a[r] * static_cast<float>(i - 32) / 32.0f;
  return quant::QuantizeMatrix(alloc, w.data(), Shape{6, 64}, DType::kBF16,
                               {.method = QuantMethod::kNf4, .blocksize = 64, .double_quant = double_quant}, 1);
}

struct Written {
  test::TempDir dir;
  SafetensorsFile file;
};

RawLookup LookupOf(const SafetensorsFile& f) {
  return [&f](std::string_view name) -> std::optional<RawTensor> {
    const SafetensorsTensor* t = f.FindTensor(name);
    if (t == nullptr) return std::nullopt;
    return RawTensor{t->dtype, t->shape, t->data};
  };
}

SafetensorsFile WriteAndOpen(const test::TempDir& dir, const std::vector<SafetensorsWriteTensor>& tensors) {
  const std::string path = dir.File("model.safetensors");
  WriteSafetensors(path, tensors, {{"format", "pt"}}, nibble::io::Existing::kReplace);
  return SafetensorsFile::Open(path);
}

TEST(BnbCheckpoint, TV4FileRoundTrip) {
  Allocator alloc;
  const QTensor q = Tv4(alloc, true);
  std::vector<SafetensorsWriteTensor> tensors;
  std::vector<std::vector<uint8_t>> strings;
  strings.reserve(8);
  AppendQuantizedTensors("P", q, tensors, strings);
  test::TempDir dir;
  const SafetensorsFile f = WriteAndOpen(dir, tensors);
  const std::string want_json =
      R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [6, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.75})";
  ASSERT_EQ(want_json.size(), 152u);
  const SafetensorsTensor* state = f.FindTensor("P.weight.quant_state.bitsandbytes__nf4");
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->dtype, DType::kU8);
  EXPECT_EQ(std::string(state->data.begin(), state->data.end()), want_json);
  const SafetensorsTensor* w = f.FindTensor("P.weight");
  EXPECT_EQ(w->dtype, DType::kU8);
  EXPECT_EQ(w->shape, (Shape{192, 1}));
  const SafetensorsTensor* absmax = f.FindTensor("P.weight.absmax");
  EXPECT_EQ(absmax->dtype, DType::kU8);
  EXPECT_EQ(std::vector<uint8_t>(absmax->data.begin(), absmax->data.end()),
            (std::vector<uint8_t>{0x00, 0x1c, 0x38, 0xc6, 0xe2, 0xff}));
  EXPECT_EQ(f.FindTensor("P.weight.nested_absmax")->shape, (Shape{1}));
  EXPECT_EQ(f.FindTensor("P.weight.nested_quant_map")->shape, (Shape{256}));
  EXPECT_EQ(f.FindTensor("P.weight.quant_map")->shape, (Shape{16}));
  QuantizationConfig cfg;
  const QTensor back = ReadQuantizedLinear(LookupOf(f), "P", "model.safetensors", cfg, alloc);
  EXPECT_TRUE(back.nested);
  EXPECT_EQ(back.nested_offset, 1.75f);
  EXPECT_EQ(back.dtype, DType::kBF16);
  std::vector<float> a(6 * 64), b(6 * 64);
  quant::DequantizeMatrix(q, a.data(), 1);
  quant::DequantizeMatrix(back, b.data(), 1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(b[0], -0.5087890625f);
}

TEST(BnbCheckpoint, QuantStorageBf16AndBf16AbsmaxAreReinterpretedAndWidened) {
  Allocator alloc;
  const QTensor q = Tv4(alloc, false);
  std::vector<uint16_t> absmax_bf16(q.scales.size());
  for (size_t i = 0; i < q.scales.size(); ++i) absmax_bf16[i] = F32ToBF16(q.scales[i]);
  const std::string json = Bnb4bitQuantStateJson(q);
  static const float kMap[16] = {};
  std::vector<SafetensorsWriteTensor> t = {
      {"P.weight", DType::kBF16, Shape{192 / 2, 1}, q.codes},  // quant_storage bfloat16: same bytes
      {"P.weight.absmax", DType::kBF16, Shape{6},
       {reinterpret_cast<const uint8_t*>(absmax_bf16.data()), absmax_bf16.size() * 2}},
      {"P.weight.quant_map", DType::kF32, Shape{16}, {reinterpret_cast<const uint8_t*>(kMap), sizeof(kMap)}},
      {"P.weight.quant_state.bitsandbytes__nf4", DType::kU8, Shape{static_cast<int64_t>(json.size())},
       {reinterpret_cast<const uint8_t*>(json.data()), json.size()}},
  };
  test::TempDir dir;
  const SafetensorsFile f = WriteAndOpen(dir, t);
  const QTensor back = ReadQuantizedLinear(LookupOf(f), "P", "m", {}, alloc);
  std::vector<float> a(384), b(384);
  quant::DequantizeMatrix(q, a.data(), 1);
  quant::DequantizeMatrix(back, b.data(), 1);
  EXPECT_EQ(a, b);  // TV4's absmax values are exact in bf16
}

TEST(BnbCheckpoint, Tv6Int8FileAndWeightFormat) {
  Allocator alloc;
  const float w[12] = {0.5f, -1.0f, 0.25f, 2.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.75f, -0.375f, 3.0f, 1.5f};
  const QTensor q = quant::QuantizeMatrix(alloc, w, Shape{3, 4}, DType::kF16, {.method = QuantMethod::kLlmInt8}, 1);
  std::vector<SafetensorsWriteTensor> tensors;
  std::vector<std::vector<uint8_t>> strings;
  AppendQuantizedTensors("P", q, tensors, strings);
  for (const auto& t : tensors) {
    if (t.name == "P.weight_format") {
      EXPECT_EQ(t.shape.rank(), 0);
    }
  }
  {  // a code of -128 (outside -127..127) is refused, naming the element
    std::vector<uint8_t> bad(q.codes.begin(), q.codes.end());
    bad[5] = 0x80;
    std::vector<SafetensorsWriteTensor> v;
    for (const auto& t : tensors) {
      v.push_back(t);
      if (t.name == "P.weight") v.back().data = bad;
    }
    test::TempDir dir;
    const SafetensorsFile f = WriteAndOpen(dir, v);
    try {
      ReadQuantizedLinear(LookupOf(f), "P", "m.safetensors", {}, alloc);
      ADD_FAILURE() << "-128 must be rejected";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("element 5 is -128"), std::string::npos) << e.what();
    }
  }
  for (int variant = 0; variant < 3; ++variant) {  // weight_format 0, absent, 2
    std::vector<SafetensorsWriteTensor> v;
    static const uint8_t kTwo = 2;
    for (const auto& t : tensors) {
      if (t.name == "P.weight_format" && variant == 1) continue;
      v.push_back(t);
      if (t.name == "P.weight_format" && variant == 2) v.back().data = {&kTwo, 1};
    }
    test::TempDir dir;
    const SafetensorsFile f = WriteAndOpen(dir, v);
    if (variant == 2) {
      try {
        ReadQuantizedLinear(LookupOf(f), "P", "m.safetensors", {}, alloc);
        FAIL() << "weight_format 2 must be rejected";
      } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("'P.weight_format' is 2 (col_turing)"), std::string::npos) << e.what();
      }
      continue;
    }
    const QTensor back = ReadQuantizedLinear(LookupOf(f), "P", "m", {}, alloc);
    EXPECT_EQ(std::vector<uint8_t>(back.codes.begin(), back.codes.end()),
              (std::vector<uint8_t>{32, 192, 16, 127, 127, 127, 127, 127, 32, 240, 127, 64}));
    EXPECT_EQ(std::vector<float>(back.scales.begin(), back.scales.end()), (std::vector<float>{2.0f, 1.0f, 3.0f}));
  }
}

TEST(BnbCheckpoint, NibbleFormatsRoundTrip) {
  Allocator alloc;
  std::vector<float> w(5 * 96);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * 0.1f;
  for (QuantMethod m : {QuantMethod::kInt4, QuantMethod::kInt8Absmax, QuantMethod::kInt8ZeroPoint}) {
    const QTensor q = quant::QuantizeMatrix(alloc, w.data(), Shape{5, 96}, DType::kF32, {.method = m, .blocksize = 32}, 1);
    std::vector<SafetensorsWriteTensor> tensors;
    std::vector<std::vector<uint8_t>> strings;
    AppendQuantizedTensors("x.y", q, tensors, strings);
    test::TempDir dir;
    const SafetensorsFile f = WriteAndOpen(dir, tensors);
    ASSERT_TRUE(IsQuantizedLinear(LookupOf(f), "x.y"));
    const QTensor back = ReadQuantizedLinear(LookupOf(f), "x.y", "m", {}, alloc);
    std::vector<float> a(w.size()), b(w.size());
    quant::DequantizeMatrix(q, a.data(), 1);
    quant::DequantizeMatrix(back, b.data(), 1);
    EXPECT_EQ(a, b) << quant::MethodName(m);
  }
}

TEST(BnbCheckpoint, BadPiecesAreNamed) {
  Allocator alloc;
  const QTensor q = Tv4(alloc, true);
  std::vector<SafetensorsWriteTensor> tensors;
  std::vector<std::vector<uint8_t>> strings;
  strings.reserve(8);
  AppendQuantizedTensors("P", q, tensors, strings);
  auto expect_error = [&](const std::vector<SafetensorsWriteTensor>& v, const std::string& needle) {
    test::TempDir dir;
    const SafetensorsFile f = WriteAndOpen(dir, v);
    try {
      ReadQuantizedLinear(LookupOf(f), "P", "m.safetensors", {}, alloc);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (const char* drop : {"P.weight.nested_absmax", "P.weight.quant_map", "P.weight.nested_quant_map"}) {
    std::vector<SafetensorsWriteTensor> v;
    for (const auto& t : tensors)
      if (t.name != drop) v.push_back(t);
    expect_error(v, std::string("'") + drop + "' is missing");
  }
  // A JSON that does not match the tensor: a shape larger than the packed bytes.
  const std::string big = R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [12, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.75})";
  const std::string no_type = R"({"blocksize": 64, "dtype": "bfloat16", "shape": [6, 64]})";
  const std::string bad_bs = R"({"quant_type": "nf4", "blocksize": 48, "dtype": "bfloat16", "shape": [6, 64]})";
  for (auto [text, needle] : {std::pair<std::string, std::string>{big, "needs 384"},
                              {no_type, "'quant_type' is missing"},
                              {bad_bs, "power of two"},
                              {"not json", "not a JSON object"}}) {
    std::vector<SafetensorsWriteTensor> v;
    for (const auto& t : tensors) {
      v.push_back(t);
      if (t.name == "P.weight.quant_state.bitsandbytes__nf4") {
        v.back().data = {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
        v.back().shape = Shape{static_cast<int64_t>(text.size())};
      }
    }
    expect_error(v, needle);
  }
}

TEST(BnbCheckpoint, QuantizationConfigRoundTripAndErrors) {
  QuantizationConfig c;
  c.bnb_4bit_quant_type = "nf4";
  c.bnb_4bit_use_double_quant = true;
  c.bnb_4bit_compute_dtype = quant::ComputeDtype::kBf16;
  const nlohmann::json j = QuantizationConfigToJson(c);
  EXPECT_EQ(j.dump(),
            R"({"_load_in_4bit":true,"_load_in_8bit":false,"bnb_4bit_compute_dtype":"bfloat16","bnb_4bit_quant_storage":"uint8","bnb_4bit_quant_type":"nf4","bnb_4bit_use_double_quant":true,"llm_int8_enable_fp32_cpu_offload":false,"llm_int8_has_fp16_weight":false,"llm_int8_skip_modules":null,"llm_int8_threshold":6.0,"load_in_4bit":true,"load_in_8bit":false,"quant_method":"bitsandbytes"})");
  const QuantizationConfig back = ParseQuantizationConfig(j, "config.json");
  EXPECT_EQ(back.bnb_4bit_compute_dtype, quant::ComputeDtype::kBf16);
  EXPECT_TRUE(back.bnb_4bit_use_double_quant);
  auto err = [](const std::string& text, const std::string& needle) {
    try {
      ParseQuantizationConfig(nlohmann::json::parse(text), "config.json");
      ADD_FAILURE() << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  err(R"({"quant_method": "gptq"})", "\"gptq\" is not supported");
  err(R"({"quant_method": "bitsandbytes", "load_in_4bit": true, "load_in_8bit": true})", "both true");
  err(R"({"quant_method": "bitsandbytes", "load_in_8bit": true, "llm_int8_threshold": 6})", "expected a float");
  err(R"({"quant_method": "bitsandbytes", "load_in_4bit": true, "bnb_4bit_quant_type": "int4"})", "expected nf4 or fp4");
  err(R"({"quant_method": "nibble", "method": "q9", "blocksize": 64})", "unknown method");
  err(R"({"quant_method": "nibble", "method": "int4", "blocksize": 64, "extra": 1})", "unknown key");
}

}  // namespace
}  // namespace nibble::io
