// `perplexity --kl-divergence-base / --kl-divergence` end to end on stories260K: a
// model against itself gives KLD 0 and full top-1 agreement; its bf16-weight load
// against the f32 reference gives the KLD, agreement and PPL computed here directly
// (both models' logits on the file's windows, exact double KL over every entry); a
// top-k reference gives a lower bound; bad combinations are ConfigErrors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "api/model_loader.h"
#include "io/kld_file.h"
#include "model/kv_cache.h"
#include "nibble/error.h"
#include "nibble/perplexity.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble {
namespace {

constexpr int64_t kCtx = 64;
constexpr int64_t kChunks = 3;
// Self-comparison: the u16 grid's second-order error (kl_divergence_test.cc).
constexpr double kTolSelfKld = 1e-7;
// Stored NLLs are f32: PPL(base) vs PPL(model) of the same model differ by f32
// rounding of ~100 NLLs around 1 nat (6e-8 each): 1e-5 relative is generous.
constexpr double kTolSelfPplRel = 1e-5;
// Mean KLD through the u16 grid vs the exact double KL: measured |diff| ~1e-8 at
// KLD ~1e-4 over 93 positions; per-position grid errors are <= 2e-5 (kl_divergence_test).
constexpr double kTolBf16Kld = 2e-6;

std::string Model() { return test::SharedData("llama2c-stories260K/stories260K.bin"); }
std::string Text() { return test::SharedData("text-tinystories/tinystories_val.txt"); }

PerplexityOptions Base(const std::string& ref, int32_t top_k = 0) {
  PerplexityOptions o;
  o.model_path = Model();
  o.text_path = Text();
  o.ctx = kCtx;
  o.max_chunks = kChunks;
  o.num_threads = 2;
  o.kl_divergence_base = ref;
  o.kl_top_k = top_k;
  return o;
}

PerplexityOptions Compare(const std::string& ref, const std::string& dtype) {
  PerplexityOptions o;
  o.model_path = Model();
  o.num_threads = 2;
  o.weight_dtype = dtype;
  o.kl_divergence = ref;
  return o;
}

// log-softmax in double.
std::vector<double> LogSoftmax(std::span<const float> x) {
  double m = -INFINITY, s = 0;
  for (float v : x) m = std::max(m, double(v));
  for (float v : x) s += std::exp(v - m);
  std::vector<double> out;
  for (float v : x) out.push_back(v - m - std::log(s));
  return out;
}

// The windows of the reference file run through both models; exact KL per scored position.
struct Direct {
  double mean_kld = 0, same_top1 = 0, ppl_ref = 0, ppl = 0;
};
Direct ComputeDirect(const std::string& ref_path) {
  const io::KldFile ref = io::KldFile::Open(ref_path);
  ExecContext ctx(2);
  api::LoadOptions lo;
  lo.load_tokenizer = false;
  lo.weights = api::WeightDtype::kF32;
  const auto f32 = api::LoadModel(Model(), lo, ctx);
  lo.weights = api::WeightDtype::kBf16;
  const auto bf16 = api::LoadModel(Model(), lo, ctx);
  const int64_t V = f32->config.vocab_size, C = ref.header().ctx;
  model::KvCache cache(ctx.allocator(), f32->config, C);
  std::vector<float> la(static_cast<size_t>(C * V)), lb(la.size());
  Direct d;
  int64_t n = 0;
  double nll_a = 0, nll_b = 0;
  for (int64_t w = 0; w < ref.header().n_windows; ++w) {
    std::vector<int32_t> toks(ref.tokens().begin() + w * C, ref.tokens().begin() + (w + 1) * C);
    toks[0] = ref.header().bos_id;
    f32->model->Forward(ctx, cache, toks, 0, la, model::LogitsMode::kAll);
    bf16->model->Forward(ctx, cache, toks, 0, lb, model::LogitsMode::kAll);
    for (int64_t p = C / 2; p + 1 < C; ++p, ++n) {
      const std::span<const float> ra(la.data() + p * V, static_cast<size_t>(V));
      const std::span<const float> rb(lb.data() + p * V, static_cast<size_t>(V));
      const auto pa = LogSoftmax(ra), pb = LogSoftmax(rb);
      for (int64_t i = 0; i < V; ++i) d.mean_kld += std::exp(pa[size_t(i)]) * (pa[size_t(i)] - pb[size_t(i)]);
      d.same_top1 += std::max_element(ra.begin(), ra.end()) - ra.begin() == std::max_element(rb.begin(), rb.end()) - rb.begin();
      const auto target = static_cast<size_t>(ref.tokens()[static_cast<size_t>(w * C + p + 1)]);
      nll_a -= pa[target];
      nll_b -= pb[target];
    }
  }
  d.mean_kld /= double(n);
  d.same_top1 /= double(n);
  d.ppl_ref = std::exp(nll_a / double(n));
  d.ppl = std::exp(nll_b / double(n));
  return d;
}

TEST(KlDivergenceRun, SelfComparisonIsZero) {
  test::TempDir dir;
  const std::string ref = dir.File("ref.kld");
  const PerplexityReport base = EvaluatePerplexity(Base(ref));
  EXPECT_FALSE(base.kld);
  EXPECT_EQ(base.kld_base_bytes, std::filesystem::file_size(ref));
  const PerplexityReport r = EvaluatePerplexity(Compare(ref, "f32"));
  ASSERT_TRUE(r.kld);
  EXPECT_EQ(r.kld->positions, kChunks * (kCtx - 1 - kCtx / 2));
  EXPECT_EQ(r.windows, kChunks);
  EXPECT_LE(r.kld->mean_kld, kTolSelfKld);
  EXPECT_EQ(r.kld->same_top1, 1.0);
  EXPECT_NEAR(r.kld->ppl / r.kld->ppl_base, 1.0, kTolSelfPplRel);
  EXPECT_NEAR(r.ppl, base.ppl, base.ppl * kTolSelfPplRel) << "same windows and tokens as the base run";
}

TEST(KlDivergenceRun, Bf16WeightsMatchADirectComputation) {
  test::TempDir dir;
  const std::string ref = dir.File("ref.kld");
  EvaluatePerplexity(Base(ref));
  const PerplexityReport r = EvaluatePerplexity(Compare(ref, "bf16"));
  const Direct d = ComputeDirect(ref);
  ASSERT_TRUE(r.kld);
  std::printf("stories260K bf16 vs f32: mean KLD %.3e (direct %.3e), same top-1 %.4f, PPL %.4f vs %.4f\n",
              r.kld->mean_kld, d.mean_kld, r.kld->same_top1, r.kld->ppl, r.kld->ppl_base);
  EXPECT_GT(d.mean_kld, 10 * kTolBf16Kld) << "bf16 rounding must be visible, or the test proves nothing";
  EXPECT_NEAR(r.kld->mean_kld, d.mean_kld, kTolBf16Kld);
  EXPECT_DOUBLE_EQ(r.kld->same_top1, d.same_top1);
  EXPECT_NEAR(r.kld->ppl, d.ppl, d.ppl * kTolSelfPplRel);
  EXPECT_NEAR(r.kld->ppl_base, d.ppl_ref, d.ppl_ref * kTolSelfPplRel);

  // A top-k reference keeps the same NLLs and argmax and bounds the KLD from below.
  const std::string topk = dir.File("top8.kld");
  EvaluatePerplexity(Base(topk, 8));
  EXPECT_LT(std::filesystem::file_size(topk), std::filesystem::file_size(ref));
  const PerplexityReport t = EvaluatePerplexity(Compare(topk, "bf16"));
  ASSERT_TRUE(t.kld);
  EXPECT_TRUE(t.kld->top_k_lower_bound);
  EXPECT_LE(t.kld->mean_kld, d.mean_kld + kTolBf16Kld);
  EXPECT_GT(t.kld->mean_kld, 0.5 * d.mean_kld) << "8 of 512 tokens carry most of the mass of a trained model";
  EXPECT_DOUBLE_EQ(t.kld->same_top1, r.kld->same_top1);
  EXPECT_DOUBLE_EQ(t.kld->ppl, r.kld->ppl);
}

TEST(KlDivergenceRun, BadCombinationsAreConfigErrors) {
  test::TempDir dir;
  const std::string ref = dir.File("ref.kld");
  auto expect_config = [](PerplexityOptions o, const char* words) {
    try {
      EvaluatePerplexity(o);
      ADD_FAILURE() << "no error for " << words;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  PerplexityOptions strided = Base(ref);
  strided.stride = 32;
  expect_config(strided, "'stride' must be 0");
  PerplexityOptions both = Base(ref);
  both.kl_divergence = ref;
  expect_config(both, "exclude each other");
  PerplexityOptions k = Base(ref, -1);
  expect_config(k, "'kl-top-k'");
  PerplexityOptions dtype = Compare(ref, "f16");
  dtype.kl_divergence.clear();
  dtype.text_path = Text();
  expect_config(dtype, "'dtype'");
  EXPECT_FALSE(std::filesystem::exists(ref)) << "no reference file after a failed run";

  EvaluatePerplexity(Base(ref));
  PerplexityOptions other = Compare(ref, "auto");
  other.model_path = test::SharedData("hf-tiny-random-llama");
  expect_config(other, "vocabulary of 512 tokens");
  EXPECT_THROW(EvaluatePerplexity(Compare(dir.File("missing.kld"), "auto")), IoError);
}

}  // namespace
}  // namespace nibble
