// rope_scaling (linear, Llama 3.1's "llama3", llama.cpp's rope_freqs divisors) against
// transformers: tiny random Llamas written by scripts/goldens/make_rope_scaling_goldens.py
// (tests/golden/hf_rope_scaling, versions in VERSIONS.txt) with positions up to 3x the
// original context; the inverse-frequency table and the f32 logits must match.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/model_loader.h"
#include "io/gguf.h"
#include "model/kv_cache.h"
#include "nibble/error.h"
#include "util/file_bytes.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::api {
namespace {

// inv_freq: both sides evaluate the same f32 expressions (pow, divisions, the llama3
// ramp) in the same order; libm's powf and torch's pow may differ by 1 ulp.
constexpr float kTolInvFreqRel = 2.5e-7f;
// Logits: f32 on both sides, 2 layers, K <= 48 terms per dot product, |logits| <= 1.8:
// accumulated rounding ~1e-6; 1e-4 as for hf_logits_test. Changing the scaling moves
// the logits by > 1e-2 (checked below), so the bound separates right from wrong.
constexpr double kTolLogitsAbs = 1e-4;
constexpr double kMinVariantDiff = 1e-2;

using test::ReadArray;

std::vector<float> RunLogits(const std::string& dir, model::LlamaConfig* config = nullptr) {
  ExecContext ctx(2);
  LoadOptions lo;
  lo.load_tokenizer = false;
  const auto m = LoadModel(dir, lo, ctx);
  const auto tokens = ReadArray<int32_t>(test::Golden("hf_rope_scaling/none/tokens.i32"));
  const auto T = static_cast<int64_t>(tokens.size());
  model::KvCache cache(ctx.allocator(), m->config, T);
  std::vector<float> logits(static_cast<size_t>(T * m->config.vocab_size));
  m->model->Forward(ctx, cache, tokens, 0, logits, model::LogitsMode::kAll);
  if (config) *config = m->config;
  return logits;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

TEST(RopeScaling, MatchesTransformers) {
  const std::vector<float> none = ReadArray<float>(test::Golden("hf_rope_scaling/none/logits.f32"));
  for (const char* variant : {"none", "llama3", "linear"}) {
    const std::string dir = test::Golden(std::string("hf_rope_scaling/") + variant);
    model::LlamaConfig config;
    const std::vector<float> got = RunLogits(dir, &config);
    const std::vector<float> want = ReadArray<float>(dir + "/logits.f32");
    const std::vector<float> inv_want = ReadArray<float>(dir + "/inv_freq.f32");
    const std::vector<float> inv = config.RopeInvFreq();
    ASSERT_EQ(inv.size(), inv_want.size());
    for (size_t j = 0; j < inv.size(); ++j)
      EXPECT_NEAR(inv[j], inv_want[j], kTolInvFreqRel * inv_want[j]) << variant << " j=" << j;
    const double diff = MaxDiff(got, want);
    std::printf("rope_scaling %s vs transformers: max |diff| = %.3g\n", variant, diff);
    EXPECT_LE(diff, kTolLogitsAbs) << variant;
    if (std::string(variant) != "none") {
      EXPECT_GT(MaxDiff(want, none), kMinVariantDiff) << variant;
    }
  }
}

// transformers 4.x wrote the same parameters as "rope_scaling" with "type".
TEST(RopeScaling, LegacyRopeScalingFieldGivesTheSameModel) {
  test::TempDir tmp;
  const std::string src = test::Golden("hf_rope_scaling/llama3");
  std::filesystem::copy_file(src + "/model.safetensors", tmp.File("model.safetensors"));
  nlohmann::json cfg = nlohmann::json::parse(test::ReadFileText(src + "/config.json"));
  nlohmann::json r = cfg["rope_parameters"];
  cfg.erase("rope_parameters");
  cfg["rope_theta"] = r["rope_theta"];
  r.erase("rope_theta");
  r["type"] = r["rope_type"];
  r.erase("rope_type");
  cfg["rope_scaling"] = r;
  std::ofstream(tmp.File("config.json")) << cfg.dump(2);
  EXPECT_LE(MaxDiff(RunLogits(tmp.path().string()), ReadArray<float>(src + "/logits.f32")), kTolLogitsAbs);

  cfg["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  std::ofstream(tmp.File("config.json")) << cfg.dump(2);
  try {
    RunLogits(tmp.path().string());
    ADD_FAILURE() << "yarn must be rejected";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rope_type \"yarn\""), std::string::npos) << e.what();
  }
  cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 4.0}};
  std::ofstream(tmp.File("config.json")) << cfg.dump(2);
  try {
    RunLogits(tmp.path().string());
    ADD_FAILURE() << "llama3 without low_freq_factor must be rejected";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'rope_scaling.low_freq_factor' is missing"), std::string::npos) << e.what();
  }
}

// llama.cpp's GGUF form of llama3 scaling: rope_freqs[j] = inv_freq_j / inv_freq_llama3_j,
// divided back in at run time.
TEST(RopeScaling, FreqFactorsReproduceLlama3) {
  model::LlamaConfig c;
  const std::vector<float> llama3 = ReadArray<float>(test::Golden("hf_rope_scaling/llama3/inv_freq.f32"));
  const std::vector<float> plain = ReadArray<float>(test::Golden("hf_rope_scaling/none/inv_freq.f32"));
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 16;
  c.vocab_size = 64;
  c.max_position_embeddings = 64;
  c.rope_scaling.type = model::RopeScalingType::kFreqFactors;
  for (size_t j = 0; j < plain.size(); ++j) c.rope_scaling.freq_factors.push_back(plain[j] / llama3[j]);
  c.Validate();
  const std::vector<float> inv = c.RopeInvFreq();
  for (size_t j = 0; j < inv.size(); ++j) EXPECT_NEAR(inv[j], llama3[j], 2 * kTolInvFreqRel * llama3[j]) << j;
  c.rope_scaling.freq_factors.pop_back();
  EXPECT_THROW(c.Validate(), ConfigError);
}

// GGUF forms on stories260K (head_dim 8): `rope_freqs.weight` divisors all 2 must give
// the same logits as `llama.rope.scaling.type = linear` with factor 2 (both divide
// every inverse frequency by 2 in f32: exact equality), divisors all 1 the unscaled
// model's, and mixed divisors something else.
std::string WriteStoriesVariant(const test::TempDir& tmp, const std::string& name, const std::vector<float>& freqs,
                                bool linear2) {
  const io::GgufFile g = io::GgufFile::Open(test::SharedData("llama2c-stories260K/stories260K.gguf"));
  std::vector<io::GgufKv> kv = g.metadata();
  if (linear2) {
    kv.push_back({"llama.rope.scaling.type", {io::GgufType::kString, std::string("linear")}});
    kv.push_back({"llama.rope.scaling.factor", {io::GgufType::kF32, 2.0}});
  }
  std::vector<io::GgufWriteTensor> ts;
  for (const io::GgufTensor& t : g.tensors()) ts.push_back({t.name, t.dtype, t.shape, t.data, nullptr});
  if (!freqs.empty())
    ts.push_back({"rope_freqs.weight", DType::kF32, Shape{static_cast<int64_t>(freqs.size())},
                  {reinterpret_cast<const uint8_t*>(freqs.data()), freqs.size() * sizeof(float)}, nullptr});
  const std::string path = tmp.File(name);
  io::WriteGguf(path, kv, ts, nibble::io::Existing::kReplace);
  return path;
}

std::vector<float> StoriesLogits(const std::string& path) {
  ExecContext ctx(2);
  LoadOptions lo;
  lo.load_tokenizer = false;
  const auto m = LoadModel(path, lo, ctx);
  std::vector<int32_t> tokens;
  for (int32_t i = 0; i < 100; ++i) tokens.push_back(1 + (i * 37) % 500);
  model::KvCache cache(ctx.allocator(), m->config, static_cast<int64_t>(tokens.size()));
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m->config.vocab_size));
  m->model->Forward(ctx, cache, tokens, 0, logits, model::LogitsMode::kAll);
  return logits;
}

TEST(RopeScaling, GgufRopeFreqsAndLinear) {
  test::TempDir tmp;
  const std::vector<float> plain = StoriesLogits(test::SharedData("llama2c-stories260K/stories260K.gguf"));
  const std::vector<float> ones = StoriesLogits(WriteStoriesVariant(tmp, "ones.gguf", {1, 1, 1, 1}, false));
  const std::vector<float> twos = StoriesLogits(WriteStoriesVariant(tmp, "twos.gguf", {2, 2, 2, 2}, false));
  const std::vector<float> lin2 = StoriesLogits(WriteStoriesVariant(tmp, "lin2.gguf", {}, true));
  const std::vector<float> mixed = StoriesLogits(WriteStoriesVariant(tmp, "mixed.gguf", {1, 1, 4, 8}, false));
  EXPECT_EQ(MaxDiff(ones, plain), 0.0);
  EXPECT_EQ(MaxDiff(twos, lin2), 0.0);
  EXPECT_GT(MaxDiff(twos, plain), kMinVariantDiff);
  EXPECT_GT(MaxDiff(mixed, plain), kMinVariantDiff);
  EXPECT_THROW(StoriesLogits(WriteStoriesVariant(tmp, "bad.gguf", {1, 1, 1}, false)), ConfigError);
  EXPECT_THROW(StoriesLogits(WriteStoriesVariant(tmp, "both.gguf", {2, 2, 2, 2}, true)), ConfigError);
}

}  // namespace
}  // namespace nibble::api
