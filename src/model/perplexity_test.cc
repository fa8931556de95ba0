// Perplexity protocols on a tiny random Llama. References: the protocols' own
// definitions written out here window by window (llama.cpp's `llama-perplexity`
// and the Hugging Face sliding-window guide), a double log-softmax, and the
// invariant that the HF protocol scores every token but the first exactly once.
#include "model/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "model/kv_cache.h"
#include "model/tiny_llama_testing.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {
using testing::RandomWeights;
using testing::TinyConfig;

// NLLs are computed from the same logits in both paths and summed in double: they
// agree to f32 rounding of each stored NLL (the result keeps per-token NLL as f32).
constexpr double kTolNll = 1e-5;

std::vector<int32_t> Text(int64_t n, int32_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + i / 3) % vocab);
  return t;
}

// logits of every position of `window`, from position 0 with an empty cache.
std::vector<float> WindowLogits(ExecContext& ctx, const LlamaModel& m, const std::vector<int32_t>& window) {
  KvCache cache(ctx.allocator(), m.config(), static_cast<int64_t>(window.size()));
  std::vector<float> out(window.size() * static_cast<size_t>(m.config().vocab_size));
  m.Forward(ctx, cache, window, 0, out, LogitsMode::kAll);
  return out;
}

double LogSoftmaxNll(const float* row, int64_t V, int32_t target) {
  double m = row[0];
  for (int64_t i = 1; i < V; ++i) m = std::max(m, double(row[i]));
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(double(row[i]) - m);
  return std::log(s) + m - double(row[target]);
}

TEST(Perplexity, LlamaCppProtocolScoresSecondHalfOfEachWindowWithBos) {
  RandomWeights rw;
  const LlamaConfig c = TinyConfig();
  const LlamaModel m(c, rw.Build(c));
  ExecContext ctx(1);
  const auto text = Text(50, 40);
  PerplexityOptions o;
  o.ctx = 16;
  o.bos_id = 1;
  const PerplexityResult r = Perplexity(ctx, m, text, o);
  ASSERT_EQ(r.num_windows, 3);  // 50 / 16, the 2 leftover tokens dropped
  ASSERT_EQ(r.num_scored, 3 * (16 - 1 - 8));
  size_t k = 0;
  double sum = 0;
  for (int64_t w = 0; w < 3; ++w) {
    std::vector<int32_t> win(text.begin() + w * 16, text.begin() + (w + 1) * 16);
    win[0] = 1;
    const auto logits = WindowLogits(ctx, m, win);
    for (int64_t p = 8; p < 15; ++p, ++k) {
      const double want = LogSoftmaxNll(logits.data() + p * 40, 40, text[size_t(w * 16 + p + 1)]);
      EXPECT_NEAR(r.nll[k], want, kTolNll) << w << " " << p;
      sum += want;
    }
  }
  EXPECT_NEAR(r.mean_nll, sum / double(r.num_scored), kTolNll);
  EXPECT_NEAR(r.ppl, std::exp(r.mean_nll), 1e-12 * r.ppl);
  // llama.cpp's "+/-": ppl * sqrt(var / (n - 1)) over the per-token NLLs.
  double mean = 0, sq = 0;
  for (float x : r.nll) mean += x, sq += double(x) * x;
  mean /= double(r.nll.size());
  const double var = sq / double(r.nll.size()) - mean * mean;
  EXPECT_NEAR(r.ppl_stderr, r.ppl * std::sqrt(var / double(r.nll.size() - 1)), 1e-9 * r.ppl);
}

TEST(Perplexity, HfSlidingWindowScoresEveryTokenButTheFirstOnce) {
  RandomWeights rw;
  const LlamaConfig c = TinyConfig();
  const LlamaModel m(c, rw.Build(c));
  ExecContext ctx(2);
  const auto text = Text(45, 40);
  for (int64_t stride : {4, 7, 15}) {
    PerplexityOptions o;
    o.ctx = 16;
    o.stride = stride;
    const PerplexityResult r = Perplexity(ctx, m, text, o);
    EXPECT_EQ(r.num_scored, 44) << stride;
  }
  // stride == ctx: non-overlapping windows [0,16) [16,32) [32,45); a window's first
  // token has no prediction (HF shifts labels inside the window), so 2 fewer tokens
  // are scored; the first window's NLLs equal a direct evaluation.
  PerplexityOptions o;
  o.ctx = 16;
  o.stride = 16;
  const PerplexityResult r = Perplexity(ctx, m, text, o);
  EXPECT_EQ(r.num_windows, 3);
  EXPECT_EQ(r.num_scored, 42);
  const auto logits = WindowLogits(ctx, m, std::vector<int32_t>(text.begin(), text.begin() + 16));
  for (int64_t p = 0; p < 15; ++p)
    EXPECT_NEAR(r.nll[size_t(p)], LogSoftmaxNll(logits.data() + p * 40, 40, text[size_t(p + 1)]), kTolNll) << p;
  // stride 4: windows start at 0, 4, …, 28, 32; [28, 44) is the last full one and
  // [32, 45) the final one, which scores only token 44, from window index 11.
  o.stride = 4;
  const PerplexityResult r4 = Perplexity(ctx, m, text, o);
  EXPECT_EQ(r4.num_windows, 9);
  const std::vector<int32_t> last(text.begin() + 32, text.end());
  const auto last_logits = WindowLogits(ctx, m, last);
  EXPECT_NEAR(r4.nll.back(), LogSoftmaxNll(last_logits.data() + 11 * 40, 40, text.back()), kTolNll);
}

TEST(Perplexity, ThreadCountDoesNotChangeTheResult) {
  RandomWeights rw;
  const LlamaConfig c = TinyConfig();
  const LlamaModel m(c, rw.Build(c));
  const auto text = Text(64, 40);
  PerplexityOptions o;
  o.ctx = 32;
  ExecContext one(1), two(2);
  EXPECT_EQ(Perplexity(one, m, text, o).ppl, Perplexity(two, m, text, o).ppl);
}

TEST(Perplexity, BadOptionsThrowConfigError) {
  RandomWeights rw;
  const LlamaConfig c = TinyConfig();
  const LlamaModel m(c, rw.Build(c));
  ExecContext ctx(1);
  const auto text = Text(20, 40);
  PerplexityOptions o;
  o.ctx = 1;
  EXPECT_THROW(Perplexity(ctx, m, text, o), ConfigError);
  o.ctx = 32;  // 20 tokens do not fill a llama.cpp window of 32
  EXPECT_THROW(Perplexity(ctx, m, text, o), ConfigError);
  o.ctx = 8;
  o.stride = 9;
  EXPECT_THROW(Perplexity(ctx, m, text, o), ConfigError);
}

TEST(Perplexity, TokenNllIsLogSumExpMinusTarget) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, -1000.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-1000.0));
  EXPECT_NEAR(TokenNll(logits, 2), lse - 3.0, 1e-12);
  EXPECT_NEAR(TokenNll(logits, 3), lse + 1000.0, 1e-9);  // no overflow/underflow
}

}  // namespace
}  // namespace nibble::model
