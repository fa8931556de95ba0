// Next-token sampling with llama.cpp semantics: repetition penalty, then greedy
// (temperature <= 0) or top-k -> top-p -> min-p -> temperature -> a seeded draw
// (the order of llama.cpp's default sampler chain).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace nibble::model {

struct SamplerConfig {
  float temperature = 0.8f;     // >= 0; 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 40;           // >= 0; 0 or >= V: off
  float top_p = 0.95f;          // >= 1: off; keeps the smallest top set with mass >= top_p
  float min_p = 0.05f;          // <= 0: off; keeps p >= min_p · p_max
  float repeat_penalty = 1.0f;  // 1: off; positive logits / penalty, negative · penalty
  int32_t repeat_last_n = 64;   // how many recent tokens the penalty looks at (>= 0; 0: none)
  uint64_t seed = 0;            // std::mt19937_64 seed: same seed, same draws, on any platform
};

// One candidate of the final distribution: token id and its probability.
using Candidate = std::pair<int32_t, float>;

class Sampler {
 public:
  // Throws ConfigError on NaN parameters, top_p/min_p outside [0, 1] or repeat_penalty <= 0.
  explicit Sampler(const SamplerConfig& config);

  // The distribution the next draw uses: candidates sorted by probability (descending,
  // ties by lower id), probabilities summing to 1. Greedy gives one candidate with 1.
  // logits: [V] f32; history: tokens so far (the last repeat_last_n are penalised).
  std::vector<Candidate> Distribution(std::span<const float> logits, std::span<const int32_t> history) const;

  // Draws the next token id from Distribution() (greedy draws nothing from the RNG).
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplerConfig config_;
  std::mt19937_64 rng_;
};

// Greedy choice: index of the largest logit, the lowest index among equal maxima.
// logits: [V] f32, V >= 1.
int32_t ArgMax(std::span<const float> logits);

// llama.cpp's repetition penalty, in place: each distinct id among the last `last_n`
// entries of history (ids outside [0, V) ignored) has its logit divided by `penalty`
// when positive and multiplied by it otherwise. logits: [V] f32.
void ApplyRepetitionPenalty(std::span<float> logits, std::span<const int32_t> history, int32_t last_n,
                            float penalty);

}  // namespace nibble::model
