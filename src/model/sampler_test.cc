// Checks the Sampler against scalar references written here (argmax, llama.cpp's
// repetition penalty, top-k, top-p, min-p, temperature), draws against the known
// distribution (frequency bands), and seeded reproducibility.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "nibble/error.h"

namespace nibble::model {
namespace {

// Probabilities are computed in double and stored as f32: within one f32 rounding.
constexpr double kTolProb = 1e-7;
// Empirical frequencies over kDraws draws stay within 5 standard deviations
// sqrt(p(1-p)/n) of p (a false failure has probability ~6e-7 per check).
constexpr double kTolSigmas = 5.0;
constexpr int kDraws = 200000;

SamplerConfig Plain(float temperature) {
  SamplerConfig c;
  c.temperature = temperature;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.min_p = 0.0f;
  c.repeat_penalty = 1.0f;
  c.seed = 42;
  return c;
}

// Reference: softmax in double of logits/temperature over the ids in `keep`.
std::vector<double> RefProbs(const std::vector<float>& logits, const std::vector<int32_t>& keep, double temperature) {
  std::vector<double> p(logits.size(), 0.0);
  double mx = -INFINITY, sum = 0.0;
  for (int32_t i : keep) mx = std::max(mx, logits[i] / temperature);
  for (int32_t i : keep) sum += (p[i] = std::exp(logits[i] / temperature - mx));
  for (double& x : p) x /= sum;
  return p;
}

void ExpectDistribution(const std::vector<Candidate>& got, const std::vector<double>& want) {
  size_t nonzero = 0;
  for (double p : want) nonzero += p > 0.0;
  ASSERT_EQ(got.size(), nonzero);
  for (const Candidate& c : got) EXPECT_NEAR(c.second, want[static_cast<size_t>(c.first)], kTolProb) << c.first;
}

const std::vector<float> kLogits = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};

TEST(SamplerTest, GreedyIsArgMaxWithLowestIdOnTies) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  Sampler s(Plain(0.0f));
  EXPECT_EQ(s.Sample(logits, {}), 1);
  EXPECT_EQ(ArgMax(logits), 1);
  const std::vector<Candidate> d = s.Distribution(logits, {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].first, 1);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  std::vector<float> logits = {2.0f, -2.0f, 1.0f, 0.5f};
  const std::vector<int32_t> history = {0, 1, 0, 7, -3, 3};  // ids 7 and -3 are out of range
  ApplyRepetitionPenalty(logits, history, /*last_n=*/64, 2.0f);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -4.0f, 1.0f, 0.25f}));  // 0 penalised once
  std::vector<float> window = {2.0f, -2.0f, 1.0f, 0.5f};
  ApplyRepetitionPenalty(window, history, /*last_n=*/1, 2.0f);       // only the last id (3)
  EXPECT_EQ(window, (std::vector<float>{2.0f, -2.0f, 1.0f, 0.25f}));
}

TEST(SamplerTest, TemperatureAndPenaltyMatchReference) {
  SamplerConfig c = Plain(0.7f);
  c.repeat_penalty = 1.3f;
  const std::vector<int32_t> history = {3, 0};
  std::vector<float> penalised = kLogits;  // all negative: multiplied
  penalised[3] *= 1.3f;
  penalised[0] *= 1.3f;
  ExpectDistribution(Sampler(c).Distribution(kLogits, history), RefProbs(penalised, {0, 1, 2, 3}, 0.7));
}

TEST(SamplerTest, TopKTopPMinPMatchReference) {
  SamplerConfig c = Plain(1.0f);
  c.top_k = 2;  // keeps ids 3, 2
  ExpectDistribution(Sampler(c).Distribution(kLogits, {}), RefProbs(kLogits, {3, 2}, 1.0));
  c = Plain(1.0f);
  c.top_p = 0.65f;  // 0.4 < 0.65 <= 0.4 + 0.3: keeps 3, 2
  ExpectDistribution(Sampler(c).Distribution(kLogits, {}), RefProbs(kLogits, {3, 2}, 1.0));
  c.top_p = 0.35f;  // 0.4 already reaches it: keeps 3
  ExpectDistribution(Sampler(c).Distribution(kLogits, {}), RefProbs(kLogits, {3}, 1.0));
  c = Plain(1.0f);
  c.min_p = 0.6f;  // p >= 0.24: keeps 3, 2
  ExpectDistribution(Sampler(c).Distribution(kLogits, {}), RefProbs(kLogits, {3, 2}, 1.0));
  c.min_p = 0.45f;  // p >= 0.18: keeps 3, 2, 1
  ExpectDistribution(Sampler(c).Distribution(kLogits, {}), RefProbs(kLogits, {3, 2, 1}, 1.0));
  // Filters use temperature-1 probabilities (llama.cpp order), then temperature applies.
  c = Plain(2.0f);
  c.top_k = 3;
  ExpectDistribution(Sampler(c).Distribution(kLogits, {}), RefProbs(kLogits, {3, 2, 1}, 2.0));
}

TEST(SamplerTest, DrawsFollowTheDistribution) {
  SamplerConfig c = Plain(1.0f);
  Sampler s(c);
  std::vector<int> counts(4, 0);
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(s.Sample(kLogits, {}))];
  for (size_t i = 0; i < 4; ++i) {
    const double p = 0.1 * static_cast<double>(i + 1);
    const double sigma = std::sqrt(p * (1 - p) / kDraws);
    EXPECT_NEAR(static_cast<double>(counts[i]) / kDraws, p, kTolSigmas * sigma) << "id " << i;
  }
}

TEST(SamplerTest, SeedReproducesDraws) {
  const std::vector<float> logits(100, 0.0f);  // uniform over 100 ids
  auto draw = [&](uint64_t seed) {
    SamplerConfig c = Plain(1.0f);
    c.seed = seed;
    Sampler s(c);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.Sample(logits, {}));
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(SamplerTest, BadParametersThrow) {
  SamplerConfig c = Plain(1.0f);
  c.top_p = 1.5f;
  EXPECT_THROW(Sampler{c}, ConfigError);
  c = Plain(1.0f);
  c.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{c}, ConfigError);
  c = Plain(NAN);
  EXPECT_THROW(Sampler{c}, ConfigError);
  EXPECT_THROW(Sampler(Plain(1.0f)).Distribution({}, {}), ShapeError);
}

}  // namespace
}  // namespace nibble::model
