// KL divergence against stored reference log-probabilities: encoding a position
// (u16 grid or top-k), comparing a model's logits with it, and llama.cpp's summary
// figures. All sums run in double, in vocabulary order (reproducible).
#include "model/kl_divergence.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

#include "nibble/error.h"

namespace nibble::model {
namespace {

constexpr double kFullCodes = 65534.0;  // codes 1..65535 span the grid; 0 = below it
constexpr double kFullStep = kFullRangeNats / kFullCodes;

// log-softmax of `logits` in double: out[i] = logits[i] - logsumexp(logits).
void LogSoftmax(std::span<const float> logits, std::vector<double>& out) {
  double max = -std::numeric_limits<double>::infinity();
  for (float l : logits) max = std::max(max, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const double lse = max + std::log(sum);
  out.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
}

int32_t ArgMax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// log(sum(exp(x))) over the entries of `lp` not flagged in `skip`; -inf when empty.
double TailLogMass(const std::vector<double>& lp, const std::vector<bool>& skip) {
  double max = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < lp.size(); ++i)
    if (!skip[i]) max = std::max(max, lp[i]);
  if (!std::isfinite(max)) return max;
  double sum = 0;
  for (size_t i = 0; i < lp.size(); ++i)
    if (!skip[i]) sum += std::exp(lp[i] - max);
  return max + std::log(sum);
}

double Percentile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// Mean and standard error of the mean, sd / sqrt(n) with the n-1 variance.
std::pair<double, double> MeanStderr(const std::vector<double>& x) {
  const double n = static_cast<double>(x.size());
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
  if (x.size() < 2) return {mean, 0.0};
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  return {mean, std::sqrt(ss / (n - 1) / n)};
}

}  // namespace

double DecodeFullLogProb(float max_logprob, uint16_t code) {
  if (code == 0) return -std::numeric_limits<double>::infinity();
  return static_cast<double>(max_logprob) - kFullRangeNats + (code - 1) * kFullStep;
}

PositionRecord EncodePosition(std::span<const float> logits, int32_t target, KldStorage storage, int32_t top_k) {
  std::vector<double> lp;
  LogSoftmax(logits, lp);
  PositionRecord r;
  r.nll = static_cast<float>(-lp[static_cast<size_t>(target)]);
  r.top1 = ArgMax(logits);
  if (storage == KldStorage::kFull) {
    const double max = lp[static_cast<size_t>(r.top1)];
    r.max_logprob = static_cast<float>(max);
    const double floor = static_cast<double>(r.max_logprob) - kFullRangeNats;
    r.codes.resize(lp.size());
    for (size_t i = 0; i < lp.size(); ++i) {
      const double steps = std::nearbyint((lp[i] - floor) / kFullStep);
      r.codes[i] = lp[i] < floor ? 0 : static_cast<uint16_t>(std::clamp(steps, 0.0, kFullCodes) + 1);
    }
    return r;
  }
  const auto k = static_cast<size_t>(std::min<int64_t>(top_k, static_cast<int64_t>(lp.size())));
  std::vector<int32_t> order(lp.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by lower id so the choice is deterministic.
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(), [&](int32_t a, int32_t b) {
    return lp[static_cast<size_t>(a)] > lp[static_cast<size_t>(b)] || (lp[static_cast<size_t>(a)] == lp[static_cast<size_t>(b)] && a < b);
  });
  std::vector<bool> kept(lp.size(), false);
  for (size_t j = 0; j < k; ++j) {
    const auto id = static_cast<size_t>(order[j]);
    r.ids.push_back(order[j]);
    r.logprobs.push_back(static_cast<float>(lp[id]));
    kept[id] = true;
  }
  r.tail_logprob = static_cast<float>(TailLogMass(lp, kept));
  return r;
}

KldPosition ComparePosition(const PositionRecord& ref, KldStorage storage, std::span<const float> logits,
                            int32_t target) {
  const size_t V = logits.size();
  std::vector<double> lq;
  LogSoftmax(logits, lq);
  KldPosition out;
  out.nll = -lq[static_cast<size_t>(target)];
  out.same_top1 = ArgMax(logits) == ref.top1;
  out.dp = std::exp(-out.nll) - std::exp(-static_cast<double>(ref.nll));
  if (storage == KldStorage::kFull) {
    if (ref.codes.size() != V)
      throw ShapeError(fmt::format("KL divergence: reference has {} log-probabilities per position, the model {}",
                                   ref.codes.size(), V));
    // Renormalise the decoded grid so the reference is a distribution (the rounding
    // and the dropped tail move its sum by ~1e-4 at most).
    double sum = 0;
    for (uint16_t c : ref.codes)
      if (c != 0) sum += std::exp(DecodeFullLogProb(ref.max_logprob, c));
    const double log_norm = std::log(sum);
    double kld = 0;
    for (size_t i = 0; i < V; ++i) {
      if (ref.codes[i] == 0) continue;
      const double lp = DecodeFullLogProb(ref.max_logprob, ref.codes[i]) - log_norm;
      kld += std::exp(lp) * (lp - lq[i]);
    }
    out.kld = std::max(0.0, kld);
    return out;
  }
  std::vector<bool> kept(V, false);
  double kld = 0;
  for (size_t j = 0; j < ref.ids.size(); ++j) {
    const int32_t id = ref.ids[j];
    if (id < 0 || static_cast<size_t>(id) >= V || kept[static_cast<size_t>(id)])
      throw ShapeError(fmt::format("KL divergence: reference top-k id {} is outside the vocabulary of {} or repeated",
                                   id, V));
    kept[static_cast<size_t>(id)] = true;
    const double lp = ref.logprobs[j];
    kld += std::exp(lp) * (lp - lq[static_cast<size_t>(id)]);
  }
  if (std::isfinite(ref.tail_logprob)) {
    const double tail_q = TailLogMass(lq, kept);
    kld += std::exp(static_cast<double>(ref.tail_logprob)) * (ref.tail_logprob - tail_q);
  }
  out.kld = std::max(0.0, kld);
  return out;
}

void KldAccumulator::Add(const KldPosition& p, double nll_base) {
  kld_.push_back(p.kld);
  nll_.push_back(p.nll);
  nll_base_.push_back(nll_base);
  dp_.push_back(p.dp);
  if (p.same_top1) ++same_top1_;
}

KldSummary KldAccumulator::Summarize() const {
  if (kld_.empty()) throw ConfigError("KL divergence: no positions were compared");
  KldSummary s;
  s.positions = static_cast<int64_t>(kld_.size());
  const double n = static_cast<double>(s.positions);
  const double mean_nll = std::accumulate(nll_.begin(), nll_.end(), 0.0) / n;
  const double mean_nll_base = std::accumulate(nll_base_.begin(), nll_base_.end(), 0.0) / n;
  s.ppl = std::exp(mean_nll);
  s.ppl_base = std::exp(mean_nll_base);
  s.delta_ppl = s.ppl - s.ppl_base;
  std::vector<double> diff(nll_.size());
  for (size_t i = 0; i < diff.size(); ++i) diff[i] = nll_[i] - nll_base_[i];
  std::tie(s.ln_ppl_ratio, s.ln_ppl_ratio_stderr) = MeanStderr(diff);
  std::tie(s.mean_kld, s.mean_kld_stderr) = MeanStderr(kld_);
  std::vector<double> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  s.min_kld = sorted.front();
  s.max_kld = sorted.back();
  s.p99_9_kld = Percentile(sorted, 0.999);
  s.p99_kld = Percentile(sorted, 0.99);
  s.p90_kld = Percentile(sorted, 0.90);
  s.median_kld = Percentile(sorted, 0.5);
  s.p10_kld = Percentile(sorted, 0.10);
  s.same_top1 = static_cast<double>(same_top1_) / n;
  s.same_top1_stderr = s.positions > 1 ? std::sqrt(s.same_top1 * (1 - s.same_top1) / (n - 1)) : 0.0;
  double sq = 0;
  for (double d : dp_) sq += d * d;
  s.rms_dp = std::sqrt(sq / n);
  s.mean_dp = std::accumulate(dp_.begin(), dp_.end(), 0.0) / n;
  return s;
}

}  // namespace nibble::model
