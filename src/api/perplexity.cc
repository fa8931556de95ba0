// nibble::EvaluatePerplexity: load, tokenize the text file once (or take the tokens of
// a KL-divergence reference file), run model::Perplexity and report the figures with
// time and memory; optionally write or compare KL-divergence reference log-probs.
#include "nibble/perplexity.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "api/model_impl.h"
#include "api/model_loader.h"
#include "core/memory_probe.h"
#include "io/kld_file.h"
#include "io/text_file.h"
#include "model/kl_divergence.h"
#include "model/perplexity.h"
#include "nibble/error.h"

namespace nibble {
namespace {

void CheckOptions(const PerplexityOptions& o) {
  if (o.model_path.empty()) throw ConfigError("perplexity: option 'model' (-m) is required");
  const bool compare = !o.kl_divergence.empty();
  if (o.text_path.empty() && !compare) throw ConfigError("perplexity: option 'file' (-f) is required");
  if (o.ctx < 2) throw ConfigError(fmt::format("perplexity: option 'ctx' (-c) must be at least 2, got {}", o.ctx));
  if (o.stride < 0 || o.stride > o.ctx)
    throw ConfigError(fmt::format(
        "perplexity: option 'stride' must be 0 (llama.cpp protocol) or in [1, ctx={}], got {}", o.ctx, o.stride));
  if (o.max_chunks < 0)
    throw ConfigError(fmt::format("perplexity: option 'chunks' must be >= 0, got {}", o.max_chunks));
  if (compare && !o.kl_divergence_base.empty())
    throw ConfigError("perplexity: options 'kl-divergence-base' and 'kl-divergence' exclude each other");
  if ((compare || !o.kl_divergence_base.empty()) && o.stride != 0)
    throw ConfigError(fmt::format(
        "perplexity: KL divergence uses llama.cpp's protocol: option 'stride' must be 0, got {}", o.stride));
  if (!o.kl_divergence_base.empty()) {
    io::CheckNotAnInput(o.kl_divergence_base, {o.model_path, o.text_path, o.tokenizer_path});
    std::error_code ec;
    if (!o.overwrite && std::filesystem::symlink_status(o.kl_divergence_base, ec).type() !=
                            std::filesystem::file_type::not_found)
      throw ConfigError(fmt::format("{}: already exists (pass --overwrite to replace it)", o.kl_divergence_base));
  }
  if (o.kl_top_k < 0 || o.kl_top_k > static_cast<int32_t>(io::kKldMaxTopK))
    throw ConfigError(fmt::format("perplexity: option 'kl-top-k' must be in [0, {}], got {}", io::kKldMaxTopK,
                                  o.kl_top_k));
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

io::KldRecord ToFileRecord(const model::PositionRecord& p) {
  io::KldRecord r;
  r.nll = p.nll;
  r.top1 = p.top1;
  r.scalar = p.codes.empty() ? p.tail_logprob : p.max_logprob;
  r.codes = p.codes;
  r.ids = p.ids;
  r.logprobs = p.logprobs;
  return r;
}

model::PositionRecord FromFileRecord(const io::KldRecord& r, bool full) {
  model::PositionRecord p;
  p.nll = r.nll;
  p.top1 = r.top1;
  if (full) {
    p.max_logprob = r.scalar;
    p.codes.assign(r.codes.begin(), r.codes.end());
  } else {
    p.tail_logprob = r.scalar;
    p.ids.assign(r.ids.begin(), r.ids.end());
    p.logprobs.assign(r.logprobs.begin(), r.logprobs.end());
  }
  return p;
}

KlDivergenceReport ToReport(const model::KldSummary& s, const io::KldHeader& h) {
  KlDivergenceReport k;
  k.reference_model = h.model;
  k.positions = s.positions;
  k.ppl_base = s.ppl_base;
  k.ppl = s.ppl;
  k.delta_ppl = s.delta_ppl;
  k.ln_ppl_ratio = s.ln_ppl_ratio;
  k.ln_ppl_ratio_stderr = s.ln_ppl_ratio_stderr;
  k.mean_kld = s.mean_kld;
  k.mean_kld_stderr = s.mean_kld_stderr;
  k.max_kld = s.max_kld;
  k.p99_9_kld = s.p99_9_kld;
  k.p99_kld = s.p99_kld;
  k.p90_kld = s.p90_kld;
  k.median_kld = s.median_kld;
  k.p10_kld = s.p10_kld;
  k.min_kld = s.min_kld;
  k.same_top1 = s.same_top1;
  k.same_top1_stderr = s.same_top1_stderr;
  k.rms_dp = s.rms_dp;
  k.mean_dp = s.mean_dp;
  k.top_k_lower_bound = h.storage == 1;
  return k;
}

// The text, or the KL-divergence reference: read before the model loads, so a typo fails first.
struct Inputs {
  std::optional<io::KldFile> ref;
  std::string text;
};

Inputs ReadInputs(const PerplexityOptions& o) {
  Inputs in;
  if (!o.kl_divergence.empty()) {
    in.ref = io::KldFile::Open(o.kl_divergence);
  } else {
    in.text = io::ReadRegularFile(o.text_path, "text file (-f)", io::kMaxTextFileBytes);
  }
  return in;
}

PerplexityReport Run(const Model& model, const PerplexityOptions& o, Inputs inputs);

}  // namespace

PerplexityReport EvaluatePerplexity(const PerplexityOptions& o) {
  CheckOptions(o);
  Inputs inputs = ReadInputs(o);
  ModelOptions mo = api::ModelOptionsFrom(o);
  mo.load_tokenizer = o.kl_divergence.empty();  // the reference file carries the token ids
  const Model model(mo);
  return Run(model, o, std::move(inputs));
}

PerplexityReport EvaluatePerplexity(const Model& model, const PerplexityOptions& options) {
  PerplexityOptions o = options;  // the model's files, for the checks and the messages
  o.model_path = model.options().model_path;
  o.tokenizer_path = model.options().tokenizer_path;
  CheckOptions(o);
  Inputs inputs = ReadInputs(o);
  return Run(model, o, std::move(inputs));
}

namespace {

PerplexityReport Run(const Model& model, const PerplexityOptions& o, Inputs inputs) {
  const bool compare = !o.kl_divergence.empty();
  const bool write_base = !o.kl_divergence_base.empty();
  std::optional<io::KldFile>& ref = inputs.ref;
  const std::string& text = inputs.text;
  const api::LoadedModel* loaded = model.impl().loaded.get();
  if (!compare && loaded->tokenizer == nullptr)
    throw ConfigError("perplexity: the model was loaded without its tokenizer (needed to tokenize the text)");
  ExecContext ctx(model.options().num_threads);  // the run's scratch
  PerplexityReport r;
  r.warnings = model.warnings();
  r.stride = o.stride;
  model::PerplexityOptions mo;
  mo.stride = o.stride;
  mo.progress = o.progress;
  std::vector<int32_t> tokens;
  if (compare) {
    const io::KldHeader& h = ref->header();
    if (h.n_vocab != loaded->config.vocab_size)
      throw ConfigError(fmt::format("{}: the reference has a vocabulary of {} tokens but {} has {} (vocab_size)",
                                    o.kl_divergence, h.n_vocab, o.model_path, loaded->config.vocab_size));
    tokens = ref->tokens();
    mo.ctx = h.ctx;
    mo.max_chunks = h.n_windows;
    mo.bos_id = h.bos_id;
  } else {
    // llama.cpp tokenizes the whole text with the vocabulary's add_bos, then (its
    // protocol) overwrites the first token of every window with BOS.
    const tokenizer::Vocab& vocab = loaded->tokenizer->vocab();
    tokens = loaded->tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/false);
    mo.ctx = o.ctx;
    mo.max_chunks = o.max_chunks;
    mo.bos_id = vocab.add_bos && vocab.bos_id != tokenizer::kNoToken ? vocab.bos_id : -1;
  }
  r.ctx = mo.ctx;
  r.text_tokens = static_cast<int64_t>(tokens.size());
  const int64_t declared = loaded->config.max_position_embeddings;
  if (r.ctx > declared)
    r.warnings.push_back(fmt::format(
        "context {} is larger than the {} positions the model declares (max_position_embeddings); "
        "perplexity past {} may degrade",
        r.ctx, declared, declared));
  const int64_t need = o.stride == 0 ? mo.ctx : 2;
  if (r.text_tokens < need)
    throw ConfigError(fmt::format("{}: the text has {} tokens, fewer than the {} one window of ctx={} needs",
                                  o.text_path, r.text_tokens, need, mo.ctx));

  // KL divergence: stream the reference records out, or compare with them in order.
  std::optional<io::KldWriter> writer;
  model::KldAccumulator acc;
  int64_t position = 0;
  std::vector<uint16_t> codes;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  if (write_base) {
    io::KldHeader h;
    h.storage = o.kl_top_k > 0 ? 1 : 0;
    h.top_k = static_cast<uint32_t>(o.kl_top_k);
    h.n_vocab = loaded->config.vocab_size;
    h.ctx = mo.ctx;
    h.n_windows = r.text_tokens / mo.ctx;
    if (mo.max_chunks > 0) h.n_windows = std::min(h.n_windows, mo.max_chunks);
    h.bos_id = mo.bos_id;
    h.model = o.model_path.substr(0, 4096);
    writer.emplace(o.kl_divergence_base, o.overwrite ? io::Existing::kReplace : io::Existing::kRefuse, h,
                   std::span<const int32_t>(tokens.data(), static_cast<size_t>(h.n_windows * h.ctx)));
    const model::KldStorage storage = h.storage == 1 ? model::KldStorage::kTopK : model::KldStorage::kFull;
    // storage is captured by value: it goes out of scope before the run.
    mo.on_position = [&, storage](std::span<const float> logits, int32_t target) {
      const model::PositionRecord rec = model::EncodePosition(logits, target, storage, o.kl_top_k);
      writer->Write(ToFileRecord(rec));
    };
  } else if (compare) {
    const bool full = ref->header().storage == 0;
    const model::KldStorage storage = full ? model::KldStorage::kFull : model::KldStorage::kTopK;
    mo.on_position = [&, full, storage](std::span<const float> logits, int32_t target) {
      const model::PositionRecord rec = FromFileRecord(ref->Record(position++, codes, ids, logprobs), full);
      acc.Add(model::ComparePosition(rec, storage, logits, target), rec.nll);
    };
  }

  const auto t0 = std::chrono::steady_clock::now();
  const model::PerplexityResult pr = model::Perplexity(ctx, *loaded->model, tokens, mo);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (writer) {
    writer->Commit();
    std::error_code ec;
    r.kld_base_bytes = std::filesystem::file_size(o.kl_divergence_base, ec);
  }
  if (compare) r.kld = ToReport(acc.Summarize(), ref->header());

  r.ppl = pr.ppl;
  r.ppl_stderr = pr.ppl_stderr;
  r.mean_nll = pr.mean_nll;
  r.scored_tokens = pr.num_scored;
  r.windows = pr.num_windows;
  r.evaluated_tokens = EvaluatedTokens(r.text_tokens, mo.ctx, o.stride, r.windows);
  if (r.seconds > 0) r.tokens_per_s = static_cast<double>(r.evaluated_tokens) / r.seconds;
  r.peak_rss_bytes = ReadRss().peak_bytes;
  r.peak_alloc_bytes = api::PeakAllocBytes(model, ctx);
  return r;
}

}  // namespace
}  // namespace nibble
