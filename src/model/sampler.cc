// Sampler: the llama.cpp chain over a sorted candidate list, probabilities in double so
// the cut-offs (top-p, min-p) do not depend on the order of f32 sums.
#include "model/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "nibble/error.h"

namespace nibble::model {
namespace {

// Softmax of the candidates' logits (already sorted descending) in double.
std::vector<double> Probabilities(const std::vector<std::pair<int32_t, float>>& cand) {
  std::vector<double> p(cand.size());
  const double mx = cand.front().second;
  double sum = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) sum += (p[i] = std::exp(static_cast<double>(cand[i].second) - mx));
  for (double& x : p) x /= sum;
  return p;
}

}  // namespace

int32_t ArgMax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

void ApplyRepetitionPenalty(std::span<float> logits, std::span<const int32_t> history, int32_t last_n,
                            float penalty) {
  if (penalty == 1.0f || last_n <= 0) return;
  const size_t n = std::min(history.size(), static_cast<size_t>(last_n));
  std::vector<bool> seen(logits.size(), false);
  for (int32_t id : history.subspan(history.size() - n)) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || seen[static_cast<size_t>(id)]) continue;
    seen[static_cast<size_t>(id)] = true;
    float& l = logits[static_cast<size_t>(id)];
    l = l > 0.0f ? l / penalty : l * penalty;
  }
}

Sampler::Sampler(const SamplerConfig& config) : config_(config), rng_(config.seed) {
  const SamplerConfig& c = config_;
  if (!(c.temperature >= 0.0f) || !std::isfinite(c.temperature))
    throw ConfigError(fmt::format("sampler: 'temperature' (--temp) must be finite and >= 0 (0 = greedy), got {}",
                                  c.temperature));
  if (c.top_k < 0) throw ConfigError(fmt::format("sampler: 'top_k' (--top-k) must be >= 0 (0 = off), got {}", c.top_k));
  if (c.repeat_last_n < 0)
    throw ConfigError(
        fmt::format("sampler: 'repeat_last_n' (--repeat-last-n) must be >= 0 (0 = off), got {}", c.repeat_last_n));
  if (!(c.top_p >= 0.0f && c.top_p <= 1.0f))
    throw ConfigError(fmt::format("sampler: 'top_p' (--top-p) must be in [0, 1], got {}", c.top_p));
  if (!(c.min_p >= 0.0f && c.min_p <= 1.0f))
    throw ConfigError(fmt::format("sampler: 'min_p' (--min-p) must be in [0, 1], got {}", c.min_p));
  if (!(c.repeat_penalty > 0.0f) || !std::isfinite(c.repeat_penalty))
    throw ConfigError(fmt::format("sampler: 'repeat_penalty' (--repeat-penalty) must be finite and > 0, got {}", c.repeat_penalty));
}

std::vector<Candidate> Sampler::Distribution(std::span<const float> logits, std::span<const int32_t> history) const {
  if (logits.empty()) throw ShapeError("sampler: empty logits");
  std::vector<float> l(logits.begin(), logits.end());
  ApplyRepetitionPenalty(l, history, config_.repeat_last_n, config_.repeat_penalty);
  if (config_.temperature <= 0.0f) return {{ArgMax(l), 1.0f}};

  std::vector<Candidate> cand(l.size());
  for (size_t i = 0; i < l.size(); ++i) cand[i] = {static_cast<int32_t>(i), l[i]};
  std::stable_sort(cand.begin(), cand.end(), [](const Candidate& a, const Candidate& b) { return a.second > b.second; });
  if (config_.top_k > 0 && static_cast<size_t>(config_.top_k) < cand.size()) cand.resize(static_cast<size_t>(config_.top_k));
  if (config_.top_p < 1.0f) {
    // Smallest prefix whose mass reaches top_p (at least one token).
    const std::vector<double> p = Probabilities(cand);
    double cum = 0.0;
    size_t keep = cand.size();
    for (size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (cum >= config_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand.resize(keep);
  }
  if (config_.min_p > 0.0f) {
    // p_i >= min_p · p_max  <=>  logit_i >= logit_max + log(min_p) (llama.cpp's form).
    const double cut = static_cast<double>(cand.front().second) + std::log(static_cast<double>(config_.min_p));
    size_t keep = 1;
    while (keep < cand.size() && static_cast<double>(cand[keep].second) >= cut) ++keep;
    cand.resize(keep);
  }
  for (Candidate& x : cand) x.second /= config_.temperature;
  const std::vector<double> p = Probabilities(cand);
  for (size_t i = 0; i < cand.size(); ++i) cand[i].second = static_cast<float>(p[i]);
  return cand;
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history) {
  const std::vector<Candidate> cand = Distribution(logits, history);
  if (cand.size() == 1) return cand.front().first;
  // u in [0, 1) from the top 53 bits: the same value from the same seed everywhere
  // (std::uniform_real_distribution is implementation-defined).
  const double u = static_cast<double>(rng_() >> 11) * 0x1p-53;
  double cum = 0.0;
  for (const Candidate& c : cand) {
    cum += c.second;
    if (u < cum) return c.first;
  }
  return cand.back().first;
}

}  // namespace nibble::model
