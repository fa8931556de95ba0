// Perplexity over token ids, with the two protocols users compare against:
//   llama.cpp (`llama-perplexity`): non-overlapping windows of `ctx` tokens, the first
//     token of each window replaced by BOS when `bos_id` >= 0, and only the second half
//     of each window scored (positions ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1);
//     trailing tokens that do not fill a window are dropped.
//   Hugging Face sliding window (`stride` > 0, the "Perplexity of fixed-length models"
//     guide): windows of up to `ctx` tokens starting every `stride` tokens; each window
//     scores only the tokens no earlier window scored (the first window scores all but
//     its first token); NLL is summed per token.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/exec_context.h"
#include "model/llama_model.h"

namespace nibble::model {

struct PerplexityOptions {
  int64_t ctx = 512;      // window length in tokens (>= 2)
  int64_t stride = 0;     // 0: llama.cpp protocol; > 0: Hugging Face sliding window
  int64_t max_chunks = 0; // 0: all windows; else at most this many
  int32_t bos_id = -1;    // llama.cpp protocol: token placed at the start of each window (-1: none)
  // Called after each window with (windows done, windows total).
  std::function<void(int64_t, int64_t)> progress;
  // Called for every scored position, in text order, with its logits [V] and the token
  // it predicts (KL divergence reads the distributions here).
  std::function<void(std::span<const float> logits, int32_t target)> on_position;
};

struct PerplexityResult {
  double ppl = 0;           // exp(mean NLL)
  double ppl_stderr = 0;    // ppl · sqrt(var(NLL) / (n - 1)), llama.cpp's "+/-"
  double mean_nll = 0;      // nats per scored token
  int64_t num_scored = 0;   // tokens scored
  int64_t num_windows = 0;
  std::vector<float> nll;   // [num_scored] NLL of each scored token, in text order
};

// Scores `tokens` with `model`. Throws ConfigError for ctx < 2, ctx above the cache the
// model allows (config.max_position_embeddings is not enforced: the caller sizes ctx),
// stride > ctx, or too few tokens for one window.
PerplexityResult Perplexity(ExecContext& ctx, const LlamaModel& model, std::span<const int32_t> tokens,
                            const PerplexityOptions& options);

// NLL (nats) of `target` under logits [V]: logsumexp(logits) - logits[target], in double.
double TokenNll(std::span<const float> logits, int32_t target);

}  // namespace nibble::model
