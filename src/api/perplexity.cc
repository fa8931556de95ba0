// nibble::EvaluatePerplexity: load, tokenize the text file once, run model::Perplexity
// and report the figures with time and memory.
#include "nibble/perplexity.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>

#include "api/model_loader.h"
#include "core/memory_probe.h"
#include "model/perplexity.h"
#include "nibble/error.h"

namespace nibble {
namespace {

std::string ReadTextFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(fmt::format("{}: cannot open the text file (-f)", path));
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void CheckOptions(const PerplexityOptions& o) {
  if (o.model_path.empty()) throw ConfigError("perplexity: option 'model' (-m) is required");
  if (o.text_path.empty()) throw ConfigError("perplexity: option 'file' (-f) is required");
  if (o.ctx < 2) throw ConfigError(fmt::format("perplexity: option 'ctx' (-c) must be at least 2, got {}", o.ctx));
  if (o.stride < 0 || o.stride > o.ctx)
    throw ConfigError(fmt::format(
        "perplexity: option 'stride' must be 0 (llama.cpp protocol) or in [1, ctx={}], got {}", o.ctx, o.stride));
  if (o.max_chunks < 0)
    throw ConfigError(fmt::format("perplexity: option 'chunks' must be >= 0, got {}", o.max_chunks));
}

// Tokens the windows run through the model, following model::Perplexity's plan: whole
// windows of ctx for llama.cpp's protocol; windows starting every `stride` tokens,
// cut at the end of the text, for the sliding window.
int64_t EvaluatedTokens(int64_t n, int64_t ctx, int64_t stride, int64_t windows) {
  if (stride == 0) return windows * ctx;
  int64_t sum = 0;
  for (int64_t k = 0; k < windows; ++k) sum += std::min(ctx, n - k * stride);
  return sum;
}

}  // namespace

PerplexityReport EvaluatePerplexity(const PerplexityOptions& o) {
  CheckOptions(o);
  const std::string text = ReadTextFile(o.text_path);  // before loading: a typo fails fast

  ExecContext ctx(o.num_threads);  // declared before `loaded`: its allocator owns converted weights
  api::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer_path;
  const std::unique_ptr<api::LoadedModel> loaded = api::LoadModel(o.model_path, lo, ctx);
  const tokenizer::Tokenizer& tok = *loaded->tokenizer;
  const tokenizer::Vocab& vocab = tok.vocab();

  PerplexityReport r;
  r.ctx = o.ctx;
  r.stride = o.stride;
  const int64_t declared = loaded->config.max_position_embeddings;
  if (o.ctx > declared)
    r.warnings.push_back(fmt::format(
        "context {} is larger than the {} positions the model declares (max_position_embeddings); "
        "perplexity past {} may degrade",
        o.ctx, declared, declared));

  // llama.cpp tokenizes the whole text with the vocabulary's add_bos, then (its protocol)
  // overwrites the first token of every window with BOS.
  const std::vector<int32_t> tokens = tok.Encode(text, /*add_special=*/true, /*parse_special=*/false);
  r.text_tokens = static_cast<int64_t>(tokens.size());
  const int64_t need = o.stride == 0 ? o.ctx : 2;
  if (r.text_tokens < need)
    throw ConfigError(fmt::format("{}: the text has {} tokens, fewer than the {} one window of ctx={} needs",
                                  o.text_path, r.text_tokens, need, o.ctx));

  model::PerplexityOptions mo;
  mo.ctx = o.ctx;
  mo.stride = o.stride;
  mo.max_chunks = o.max_chunks;
  mo.bos_id = vocab.add_bos && vocab.bos_id != tokenizer::kNoToken ? vocab.bos_id : -1;
  mo.progress = o.progress;

  const auto t0 = std::chrono::steady_clock::now();
  const model::PerplexityResult pr = model::Perplexity(ctx, *loaded->model, tokens, mo);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  r.ppl = pr.ppl;
  r.ppl_stderr = pr.ppl_stderr;
  r.mean_nll = pr.mean_nll;
  r.scored_tokens = pr.num_scored;
  r.windows = pr.num_windows;
  r.evaluated_tokens = EvaluatedTokens(r.text_tokens, o.ctx, o.stride, r.windows);
  if (r.seconds > 0) r.tokens_per_s = static_cast<double>(r.evaluated_tokens) / r.seconds;
  r.peak_rss_bytes = ReadRss().peak_bytes;
  r.peak_alloc_bytes = ctx.allocator().peak_bytes();
  return r;
}

}  // namespace nibble
