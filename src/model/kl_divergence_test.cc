// KL divergence encoding and comparison against a plain double computation written
// here (log-softmax, sum p_ref * (log p_ref - log p_model) over every entry), on
// random logits of several sharpnesses; and the summary against direct formulas.
#include "model/kl_divergence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "nibble/error.h"

namespace nibble::model {
namespace {

// u16 grid: each stored log-prob is at most half a step (24/65534/2 = 1.8e-4 nats) off.
// Adversarial rounding could move the KLD by ~4e-4, but the rounding errors of
// different entries are independent and enter p-weighted with both signs: over 4096
// entries the measured error is <= 1e-5 (at KLD ~0.5) and <= 1e-6 (at KLD ~5e-3);
// 2e-5 keeps a 2x margin and is still below the smallest KLD tested (2.3e-5).
constexpr double kTolFullKld = 2e-5;
// KL(p_hat || p) of a distribution with itself after the grid: second order in the
// rounding, (1.8e-4)^2 / 2 ~ 2e-8 per unit mass.
constexpr double kTolFullSelfKld = 1e-7;
// Top-k with k = V keeps every log-prob in f32: relative 6e-8 on values up to ~30 nats.
constexpr double kTolTopKAllKld = 1e-5;
constexpr double kTolGridDecode = 24.0 / 65534.0 / 2 + 1e-5;  // half a step + f32 top

std::vector<double> LogSoftmaxRef(const std::vector<float>& x) {
  double m = -INFINITY;
  for (float v : x) m = std::max(m, static_cast<double>(v));
  double s = 0;
  for (float v : x) s += std::exp(v - m);
  std::vector<double> out;
  for (float v : x) out.push_back(v - m - std::log(s));
  return out;
}

double KldRef(const std::vector<float>& ref, const std::vector<float>& model) {
  const auto lp = LogSoftmaxRef(ref), lq = LogSoftmaxRef(model);
  double k = 0;
  for (size_t i = 0; i < lp.size(); ++i) k += std::exp(lp[i]) * (lp[i] - lq[i]);
  return k;
}

std::vector<float> RandomLogits(std::mt19937& rng, int V, float scale) {
  std::normal_distribution<float> n(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(V));
  for (auto& x : v) x = n(rng);
  return v;
}

std::vector<float> Perturb(std::mt19937& rng, const std::vector<float>& x, float amount) {
  std::normal_distribution<float> n(0.0f, amount);
  std::vector<float> v = x;
  for (auto& e : v) e += n(rng);
  return v;
}

TEST(KlDivergence, NllAndTop1AreExact) {
  std::mt19937 rng(1);
  const auto logits = RandomLogits(rng, 300, 3.0f);
  const auto lp = LogSoftmaxRef(logits);
  const int32_t top = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (KldStorage s : {KldStorage::kFull, KldStorage::kTopK}) {
    const PositionRecord r = EncodePosition(logits, 17, s, 8);
    EXPECT_EQ(r.top1, top);
    EXPECT_EQ(r.nll, static_cast<float>(-lp[17]));
  }
}

TEST(KlDivergence, FullGridDecodesWithinHalfAStep) {
  std::mt19937 rng(2);
  const auto logits = RandomLogits(rng, 2000, 4.0f);
  const auto lp = LogSoftmaxRef(logits);
  const PositionRecord r = EncodePosition(logits, 0, KldStorage::kFull, 0);
  const double top = *std::max_element(lp.begin(), lp.end());
  int below = 0;
  for (size_t i = 0; i < lp.size(); ++i) {
    if (lp[i] < top - kFullRangeNats - kTolGridDecode) {
      EXPECT_EQ(r.codes[i], 0) << i;
      ++below;
    } else if (r.codes[i] != 0) {
      EXPECT_NEAR(DecodeFullLogProb(r.max_logprob, r.codes[i]), lp[i], kTolGridDecode) << i;
    }
  }
  EXPECT_GT(below, 0) << "the test should reach below the grid (scale 4 over 2000 entries)";
}

TEST(KlDivergence, FullMatchesExactKldAcrossSharpness) {
  std::mt19937 rng(3);
  for (float scale : {0.5f, 2.0f, 6.0f}) {
    for (float noise : {0.0f, 0.01f, 0.1f, 1.0f}) {
      const auto ref = RandomLogits(rng, 4096, scale);
      const auto model = Perturb(rng, ref, noise);
      const PositionRecord r = EncodePosition(ref, 5, KldStorage::kFull, 0);
      const KldPosition p = ComparePosition(r, KldStorage::kFull, model, 5);
      const double exact = KldRef(ref, model);
      EXPECT_NEAR(p.kld, exact, noise == 0.0f ? kTolFullSelfKld : kTolFullKld) << scale << " " << noise;
      EXPECT_NEAR(p.nll, -LogSoftmaxRef(model)[5], 1e-12);
    }
  }
}

TEST(KlDivergence, TopKIsALowerBoundAndExactWithTheWholeVocabulary) {
  std::mt19937 rng(4);
  const int V = 1000;
  for (float noise : {0.05f, 0.5f}) {
    const auto ref = RandomLogits(rng, V, 3.0f);
    const auto model = Perturb(rng, ref, noise);
    const double exact = KldRef(ref, model);
    double prev = 0;
    for (int k : {1, 8, 64, 512}) {
      const KldPosition p = ComparePosition(EncodePosition(ref, 3, KldStorage::kTopK, k), KldStorage::kTopK, model, 3);
      EXPECT_LE(p.kld, exact + kTolTopKAllKld) << "k=" << k;
      EXPECT_GE(p.kld, prev - kTolTopKAllKld) << "k=" << k << ": finer bins never lower the bound";
      prev = p.kld;
    }
    const KldPosition all = ComparePosition(EncodePosition(ref, 3, KldStorage::kTopK, V), KldStorage::kTopK, model, 3);
    EXPECT_NEAR(all.kld, exact, kTolTopKAllKld);
  }
}

TEST(KlDivergence, SameTop1AndDeltaP) {
  std::vector<float> ref = {0.0f, 3.0f, 1.0f, -2.0f};
  std::vector<float> model = {0.0f, 1.0f, 3.0f, -2.0f};  // argmax moves from 1 to 2
  const PositionRecord r = EncodePosition(ref, 2, KldStorage::kFull, 0);
  const KldPosition p = ComparePosition(r, KldStorage::kFull, model, 2);
  EXPECT_FALSE(p.same_top1);
  EXPECT_NEAR(p.dp, std::exp(LogSoftmaxRef(model)[2]) - std::exp(LogSoftmaxRef(ref)[2]), 1e-7);
  EXPECT_TRUE(ComparePosition(r, KldStorage::kFull, ref, 2).same_top1);
}

TEST(KlDivergence, VocabularyMismatchIsAShapeError) {
  std::vector<float> ref(10, 0.0f), model(11, 0.0f);
  EXPECT_THROW(ComparePosition(EncodePosition(ref, 0, KldStorage::kFull, 0), KldStorage::kFull, model, 0), ShapeError);
  PositionRecord bad = EncodePosition(ref, 0, KldStorage::kTopK, 2);
  bad.ids[1] = 10;
  EXPECT_THROW(ComparePosition(bad, KldStorage::kTopK, ref, 0), ShapeError);
}

TEST(KlDivergence, SummaryMatchesDirectFormulas) {
  KldAccumulator acc;
  const std::vector<double> kld = {0.5, 0.1, 0.2, 0.0, 0.4};
  const std::vector<double> nll = {1.0, 2.0, 0.5, 1.5, 1.0};
  const std::vector<double> base = {0.9, 2.1, 0.5, 1.0, 1.0};
  const std::vector<bool> same = {true, false, true, true, true};
  for (size_t i = 0; i < kld.size(); ++i) acc.Add({kld[i], nll[i], same[i], 0.01 * static_cast<double>(i)}, base[i]);
  const KldSummary s = acc.Summarize();
  EXPECT_EQ(s.positions, 5);
  EXPECT_NEAR(s.mean_kld, 0.24, 1e-12);
  // sd of {0.5,0.1,0.2,0,0.4} with n-1: sqrt(0.173/4)... = sqrt(0.043) ; / sqrt(5)
  EXPECT_NEAR(s.mean_kld_stderr, std::sqrt(((0.26 * 0.26) + 0.14 * 0.14 + 0.04 * 0.04 + 0.24 * 0.24 + 0.16 * 0.16) / 4 / 5),
              1e-12);
  EXPECT_NEAR(s.median_kld, 0.2, 1e-12);
  EXPECT_NEAR(s.max_kld, 0.5, 1e-12);
  EXPECT_NEAR(s.min_kld, 0.0, 1e-12);
  EXPECT_NEAR(s.p90_kld, 0.4 + 0.6 * 0.1, 1e-12);  // position 3.6 of the sorted list
  EXPECT_NEAR(s.ppl, std::exp(6.0 / 5), 1e-12);
  EXPECT_NEAR(s.ppl_base, std::exp(5.5 / 5), 1e-12);
  EXPECT_NEAR(s.ln_ppl_ratio, 0.1, 1e-12);
  EXPECT_NEAR(s.same_top1, 0.8, 1e-12);
  EXPECT_NEAR(s.rms_dp, std::sqrt((0 + 1e-4 + 4e-4 + 9e-4 + 16e-4) / 5), 1e-12);
  EXPECT_THROW(KldAccumulator().Summarize(), ConfigError);
}

}  // namespace
}  // namespace nibble::model
