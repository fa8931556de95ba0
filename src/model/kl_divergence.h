// KL divergence of a model against reference log-probabilities, as llama.cpp's
// `llama-perplexity --kl-divergence` reports it: per scored position the reference
// distribution is stored compactly (PositionRecord) and later compared with another
// model's logits on the same tokens (KldAccumulator -> KldSummary).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace nibble::model {

// How the reference log-probabilities of one position are stored.
enum class KldStorage : uint32_t {
  // Every vocabulary entry as a u16 code on a linear grid from the largest
  // log-probability down to kFullRangeNats below it (step kFullRangeNats / 65534, so at
  // most ~1.8e-4 nats off per entry); code 0 marks an entry below the grid, taken as
  // probability 0. 2 bytes per vocabulary entry (llama.cpp stores u16 log-probs too).
  kFull = 0,
  // The top_k largest log-probabilities exactly (f32 with their ids) and the mass of
  // the rest as one bin: the KLD over these k+1 bins is a lower bound of the full one
  // (grouping outcomes never increases KL). 8 bytes per kept entry.
  kTopK = 1,
};

inline constexpr double kFullRangeNats = 24.0;  // e^-24 ≈ 3.8e-11: V=49152 entries below it hold < 2e-6 mass

// What is kept of one scored position. `nll` and `top1` are exact (from the f32
// logits), whichever storage keeps the distribution.
struct PositionRecord {
  float nll = 0;       // -log p(actual next token), nats
  int32_t top1 = 0;    // argmax of the logits (the lowest id among ties)
  float max_logprob = 0;         // kFull: the top of the grid (the largest log-probability)
  std::vector<uint16_t> codes;   // kFull: [V]
  std::vector<int32_t> ids;      // kTopK: [k], largest first
  std::vector<float> logprobs;   // kTopK: [k]
  float tail_logprob = 0;        // kTopK: log of the mass outside the top k (-inf when none)
};

// Log-softmax of `logits` (double internally) into a record for `target`.
PositionRecord EncodePosition(std::span<const float> logits, int32_t target, KldStorage storage, int32_t top_k);

// The reference log-probability of entry `code` in kFull storage (code 0: -inf).
double DecodeFullLogProb(float max_logprob, uint16_t code);

struct KldPosition {
  double kld = 0;     // KL(reference || model), nats
  double nll = 0;     // the model's NLL of the actual token
  bool same_top1 = false;
  double dp = 0;      // p_model(actual) - p_reference(actual)
};

// Compares the model's logits at one position with the reference record.
// Throws ShapeError when the record does not fit the vocabulary size.
KldPosition ComparePosition(const PositionRecord& ref, KldStorage storage, std::span<const float> logits,
                            int32_t target);

// The figures llama.cpp prints for a KL-divergence run, over every scored position.
struct KldSummary {
  int64_t positions = 0;
  double ppl_base = 0, ppl = 0;       // exp(mean NLL) of the reference and of the model
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;  // mean(nll - nll_base) = ln(ppl / ppl_base)
  double delta_ppl = 0;               // ppl - ppl_base
  double mean_kld = 0, mean_kld_stderr = 0;
  double max_kld = 0, p99_9_kld = 0, p99_kld = 0, p90_kld = 0, median_kld = 0, p10_kld = 0, min_kld = 0;
  double same_top1 = 0, same_top1_stderr = 0;  // fraction of positions with the same argmax
  double rms_dp = 0, mean_dp = 0;              // of p(actual token): model - reference
};

class KldAccumulator {
 public:
  void Add(const KldPosition& p, double nll_base);
  // Throws ConfigError when nothing was added.
  KldSummary Summarize() const;

 private:
  std::vector<double> kld_;
  std::vector<double> nll_, nll_base_;
  std::vector<double> dp_;
  int64_t same_top1_ = 0;
};

}  // namespace nibble::model
