// Perplexity protocols (llama.cpp windows, Hugging Face sliding window) over a
// LlamaModel: one batched Forward per window with the logits of every position.
#include "model/perplexity.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "core/tensor.h"
#include "model/kv_cache.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {

// One window to evaluate: tokens [begin, begin+len) of the text, scoring the
// predictions made at window positions [score_from, len-1) (position p predicts p+1).
struct Window {
  int64_t begin, len, score_from;
};

std::vector<Window> PlanWindows(int64_t n, const PerplexityOptions& o) {
  std::vector<Window> w;
  if (o.stride == 0) {
    // llama.cpp: n / ctx whole windows, second half scored.
    for (int64_t i = 0; (i + 1) * o.ctx <= n; ++i) w.push_back({i * o.ctx, o.ctx, o.ctx / 2});
  } else {
    // Hugging Face: targets are the tokens after the previous window's end.
    int64_t prev_end = 0;
    for (int64_t begin = 0; begin < n; begin += o.stride) {
      const int64_t end = std::min(begin + o.ctx, n);
      const int64_t trg_len = end - prev_end;  // new tokens this window scores
      const int64_t len = end - begin;
      // Token at window index q is predicted from q-1, so index 0 is never a target.
      const int64_t first_target = std::max<int64_t>(len - trg_len, 1);
      if (len >= 2) w.push_back({begin, len, first_target - 1});
      prev_end = end;
      if (end == n) break;
    }
  }
  if (o.max_chunks > 0 && static_cast<int64_t>(w.size()) > o.max_chunks) w.resize(static_cast<size_t>(o.max_chunks));
  return w;
}

}  // namespace

double TokenNll(std::span<const float> logits, int32_t target) {
  double max = -INFINITY;
  for (float l : logits) max = std::max(max, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  return max + std::log(sum) - static_cast<double>(logits[static_cast<size_t>(target)]);
}

PerplexityResult Perplexity(ExecContext& ctx, const LlamaModel& model, std::span<const int32_t> tokens,
                            const PerplexityOptions& o) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (o.ctx < 2) throw ConfigError(fmt::format("perplexity: ctx must be at least 2, found {}", o.ctx));
  if (o.stride < 0 || o.stride > o.ctx)
    throw ConfigError(fmt::format("perplexity: stride must be in [1, ctx={}] (or 0 for llama.cpp's protocol), found {}",
                                  o.ctx, o.stride));
  const std::vector<Window> windows = PlanWindows(n, o);
  if (windows.empty())
    throw ConfigError(fmt::format("perplexity: {} tokens do not fill one window of ctx={} (need at least {})", n,
                                  o.ctx, o.stride == 0 ? o.ctx : 2));

  const int64_t V = model.config().vocab_size;
  KvCache cache(ctx.allocator(), model.config(), o.ctx);
  Tensor logits(ctx.allocator(), DType::kF32, Shape{o.ctx, V});
  std::vector<int32_t> window_tokens;
  PerplexityResult r;
  r.num_windows = static_cast<int64_t>(windows.size());
  for (size_t wi = 0; wi < windows.size(); ++wi) {
    const Window& w = windows[wi];
    window_tokens.assign(tokens.begin() + w.begin, tokens.begin() + w.begin + w.len);
    if (o.stride == 0 && o.bos_id >= 0) window_tokens[0] = o.bos_id;
    std::span<float> out(static_cast<float*>(logits.data()), static_cast<size_t>(w.len * V));
    model.Forward(ctx, cache, window_tokens, 0, out, LogitsMode::kAll);
    for (int64_t p = w.score_from; p + 1 < w.len; ++p) {
      const std::span<const float> row = out.subspan(static_cast<size_t>(p * V), static_cast<size_t>(V));
      const int32_t target = tokens[static_cast<size_t>(w.begin + p + 1)];
      r.nll.push_back(static_cast<float>(TokenNll(row, target)));
      if (o.on_position) o.on_position(row, target);
    }
    if (o.progress) o.progress(static_cast<int64_t>(wi + 1), r.num_windows);
  }
  // Mean and variance in double, in text order (a fixed order: reproducible).
  double sum = 0, sum_sq = 0;
  for (float x : r.nll) {
    sum += x;
    sum_sq += static_cast<double>(x) * x;
  }
  r.num_scored = static_cast<int64_t>(r.nll.size());
  const double count = static_cast<double>(r.num_scored);
  r.mean_nll = sum / count;
  r.ppl = std::exp(r.mean_nll);
  if (r.num_scored > 1) {
    const double var = std::max(0.0, sum_sq / count - r.mean_nll * r.mean_nll);
    r.ppl_stderr = r.ppl * std::sqrt(var / (count - 1));
  }
  return r;
}

}  // namespace nibble::model
