// nibble::Quantize / Dequantize / export end to end on the real stories260K weights:
// exports reproduce the source model's logits (HF rotate-half Q/K order), quantized
// checkpoints load back with exactly the quantized weights, dequantize inverts them,
// and bad input leaves no output behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/model_loader.h"
#include "io/bnb_checkpoint.h"
#include "io/safetensors.h"
#include "nibble/error.h"
#include "nibble/quantize.h"
#include "quant/registry.h"
#include "util/file_bytes.h"
#include "util/logit_stats.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 270, 294, 267, 401, 259, 496, 267};

std::vector<float> Logits(const std::string& path, api::WeightDtype dt = api::WeightDtype::kF32) {
  ExecContext ctx(2);
  api::LoadOptions lo;
  lo.load_tokenizer = false;
  lo.weights = dt;
  const auto m = api::LoadModel(path, lo, ctx);
  model::KvCache cache(ctx.allocator(), m->config, 32);
  std::vector<float> logits(kPrompt.size() * static_cast<size_t>(m->config.vocab_size));
  m->model->Forward(ctx, cache, kPrompt, 0, logits, model::LogitsMode::kAll);
  return logits;
}

using test::MeanKld;

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return test::MaxAbsDiff(a, b);
}

TEST(Quantize, ExportReproducesTheSourceModel) {
  test::TempDir dir;
  const std::vector<float> ref = Logits(test::SharedData("llama2c-stories260K/stories260K.bin"));
  for (const std::string src : {"llama2c-stories260K/stories260K.bin", "llama2c-stories260K/stories260K.gguf"}) {
    const std::string out = dir.File(fs::path(src).extension().string().substr(1));
    QuantizeOptions o;
    o.method = "none";
    const QuantizeReport r = Quantize(test::SharedData(src), out, o);
    EXPECT_EQ(r.num_quantized, 0u);
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
      EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
    const nlohmann::json cfg = nlohmann::json::parse(test::ReadFileText(out + "/config.json"));
    EXPECT_EQ(cfg["model_type"], "llama");
    EXPECT_FALSE(cfg.contains("quantization_config"));
    // Q/K rows moved to rotate-half; the logits agree with the llama2.c run to rounding
    // (the two RoPE layouts pair the same values, f32 throughout): 1e-5 of |logit| <= 20.
    EXPECT_LT(MaxDiff(Logits(out), ref), 2e-4) << src;
  }
}

TEST(Quantize, EveryMethodLoadsBackWithItsQuantizedWeights) {
  test::TempDir dir;
  const std::string src = test::SharedData("llama2c-stories260K/stories260K.bin");
  const std::vector<float> ref = Logits(src);
  struct Case {
    std::string method;
    bool dq;
    double max_kld;  // mean KL divergence vs f32 over the 12 prompt positions: ~3x the measured value
  };
  for (const Case& c : {Case{"nf4", true, 0.8}, Case{"nf4", false, 0.75}, Case{"fp4", false, 0.65},
                        Case{"int4", false, 0.9}, Case{"int8", false, 0.01}, Case{"int8-absmax", false, 0.003},
                        Case{"int8-zeropoint", false, 0.003}}) {
    SCOPED_TRACE(c.method);
    const std::string out = dir.File(c.method + (c.dq ? "-dq" : ""));
    QuantizeOptions o;
    o.method = c.method;
    o.double_quant = c.dq;
    o.blocksize = c.method.starts_with("int8-") ? 0 : 64;
    const QuantizeReport r = Quantize(src, out, o);
    EXPECT_EQ(r.num_quantized, 35u);  // 5 layers x 7 projections (lm_head: tied)
    const nlohmann::json cfg = nlohmann::json::parse(test::ReadFileText(out + "/config.json"));
    ASSERT_TRUE(cfg.contains("quantization_config"));
    const std::vector<float> q = Logits(out);
    const double kld = MeanKld(ref, q, 512);
    std::printf("%s%s: mean KLD vs f32 on the prompt %.5f\n", c.method.c_str(), c.dq ? " +dq" : "", kld);
    EXPECT_GT(kld, 0.0);
    EXPECT_LT(kld, c.max_kld);
    // Dequantize, then load the plain checkpoint: the same weights, run dense. The
    // quantized run multiplies table values and scales the block sum once (f32), so
    // the two differ by rounding only: 1e-4 of logits of magnitude <= 20.
    const std::string plain = out + "-plain";
    DequantizeOptions d_o;
    d_o.dtype = "f32";
    const QuantizeReport dr = Dequantize(out, plain, d_o);
    EXPECT_EQ(dr.num_quantized, 35u);
    const nlohmann::json pcfg = nlohmann::json::parse(test::ReadFileText(plain + "/config.json"));
    EXPECT_FALSE(pcfg.contains("quantization_config"));
    const double dd = MaxDiff(Logits(plain), q);
    if (c.method == "int8") {
      EXPECT_LT(dd, 0.5);  // LLM.int8() also quantizes activations; dense does not
    } else {
      EXPECT_LT(dd, 2e-3);
    }
  }
}

// llm_int8_has_fp16_weight (spec §5.6): 16-bit weights in the file, quantized to CB/SCB
// when loaded: the same logits as the checkpoint `quantize --method int8` wrote.
TEST(Quantize, LlmInt8HasFp16WeightQuantizesAtLoad) {
  test::TempDir dir;
  const std::string src = test::SharedData("llama2c-stories260K/stories260K.bin");
  QuantizeOptions none;
  none.method = "none";
  Quantize(src, dir.File("plain"), none);
  nlohmann::json cfg = nlohmann::json::parse(test::ReadFileText(dir.File("plain/config.json")));
  cfg["quantization_config"] = {{"quant_method", "bitsandbytes"},      {"load_in_8bit", true},
                                {"llm_int8_has_fp16_weight", true},   {"llm_int8_threshold", 6.0},
                                {"llm_int8_skip_modules", nullptr}};
  const std::string text = cfg.dump(2);
  test::WriteFileBytes(dir.File("plain/config.json"), std::vector<uint8_t>(text.begin(), text.end()));
  QuantizeOptions int8;
  int8.method = "int8";
  Quantize(src, dir.File("int8"), int8);
  ExecContext ctx(2);
  api::LoadOptions lo;
  lo.load_tokenizer = false;
  EXPECT_EQ(api::LoadModel(dir.File("plain"), lo, ctx)->quantized.size(), 35u);
  const std::vector<float> a = Logits(dir.File("plain")), b = Logits(dir.File("int8"));
  EXPECT_EQ(MaxDiff(a, b), 0.0);
}

TEST(Quantize, SkipModulesMatching) {
  const std::vector<std::string> skip = {"lm_head", "mlp.down_proj"};
  EXPECT_TRUE(io::SkippedModule("lm_head", skip));
  EXPECT_TRUE(io::SkippedModule("model.layers.3.mlp.down_proj", skip));
  EXPECT_FALSE(io::SkippedModule("model.layers.3.mlp.up_proj", skip));
  EXPECT_FALSE(io::SkippedModule("model.layers.3.xmlp.down_proj", skip));
  EXPECT_TRUE(io::SkippedModule("lm_head.extra", skip));
  EXPECT_FALSE(io::SkippedModule("lm_headx", skip));
}

TEST(Quantize, BadInputLeavesNothingBehind) {
  test::TempDir dir;
  const std::string src = test::SharedData("llama2c-stories260K/stories260K.bin");
  auto expect_error = [&](QuantizeOptions o, const std::string& out, const std::string& needle) {
    try {
      Quantize(src, out, o);
      ADD_FAILURE() << "expected an error with " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    for (const auto& entry : fs::directory_iterator(dir.path()))
      EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
  };
  QuantizeOptions o;
  o.method = "q9";
  expect_error(o, dir.File("a"), "--method");
  o.method = "nf4";
  o.blocksize = 48;
  expect_error(o, dir.File("a"), "power of two");
  o.blocksize = 64;
  o.compute_dtype = "int8";
  expect_error(o, dir.File("a"), "--compute-dtype");
  o.compute_dtype = "float32";
  o.method = "int4";
  o.double_quant = true;
  expect_error(o, dir.File("a"), "--double-quant");
  EXPECT_FALSE(fs::exists(dir.File("a")));
  // An existing OUT is kept unless --overwrite.
  fs::create_directories(dir.File("exists"));
  test::WriteFileBytes(dir.File("exists/keep"), {1, 2, 3});
  QuantizeOptions ok;
  expect_error(ok, dir.File("exists"), "already exists");
  EXPECT_TRUE(fs::exists(dir.File("exists/keep")));
  // Re-quantizing a quantized checkpoint is refused.
  Quantize(src, dir.File("q"), ok);
  try {
    Quantize(dir.File("q"), dir.File("qq"), ok);
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("already quantized"), std::string::npos);
  }
  // Dequantizing a plain checkpoint is refused.
  QuantizeOptions none;
  none.method = "none";
  Quantize(src, dir.File("plain"), none);
  EXPECT_THROW(Dequantize(dir.File("plain"), dir.File("dq"), {}), ConfigError);
  EXPECT_FALSE(fs::exists(dir.File("dq")));
  // A weight with a NaN is refused, naming the tensor.
  {
    io::SafetensorsCheckpoint ck = io::SafetensorsCheckpoint::Open(dir.File("plain"));
    std::vector<io::SafetensorsWriteTensor> w;
    std::vector<std::vector<uint8_t>> keep;
    for (const auto* t : ck.tensors()) {
      keep.emplace_back(t->data.begin(), t->data.end());
      if (t->name == "model.layers.2.mlp.up_proj.weight") {
        const float nan = std::nanf("");
        std::memcpy(keep.back().data() + 40, &nan, 4);
      }
    }
    size_t i = 0;
    for (const auto* t : ck.tensors()) w.push_back({t->name, t->dtype, t->shape, keep[i++]});
    fs::create_directories(dir.File("nan"));
    io::WriteSafetensors(dir.File("nan/model.safetensors"), w, {}, nibble::io::Existing::kReplace);
    fs::copy_file(dir.File("plain/config.json"), dir.File("nan/config.json"));
    try {
      Quantize(dir.File("nan"), dir.File("nan-q"), ok);
      ADD_FAILURE();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("'model.layers.2.mlp.up_proj.weight': element 10 is nan"),
                std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(fs::exists(dir.File("nan-q")));
  }
}

}  // namespace
}  // namespace nibble
