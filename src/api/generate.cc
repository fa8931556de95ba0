// nibble::Generate and nibble::Tokenize: load, encode the prompt, run it batched,
// then sample and decode token by token with streaming and stop strings.
#include "nibble/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "api/model_impl.h"
#include "api/model_loader.h"
#include "api/sampling_options.h"
#include "core/memory_probe.h"
#include "model/kv_cache.h"
#include "model/sampler.h"
#include "nibble/error.h"

namespace nibble {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// Text produced so far, emitting to the callback only what can no longer turn into a
// stop string.
class StopScanner {
 public:
  StopScanner(const std::vector<std::string>& stops, const std::function<void(std::string_view)>& sink)
      : stops_(stops), sink_(sink) {
    for (const auto& s : stops_) hold_ = std::max(hold_, s.empty() ? size_t{0} : s.size() - 1);
  }

  // Appends `piece`; returns true when a stop string now appears (the text is then cut
  // where it starts and everything before it has been emitted).
  bool Append(std::string& text, std::string_view piece) {
    const size_t scan_from = text.size() > hold_ ? text.size() - hold_ : 0;
    text += piece;
    size_t cut = std::string::npos;
    for (const auto& s : stops_) {
      if (s.empty()) continue;
      const size_t at = text.find(s, scan_from);
      cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
      text.resize(cut);
      Flush(text);
      return true;
    }
    if (text.size() > hold_ + emitted_) Emit(text, text.size() - hold_);
    return false;
  }
  void Flush(const std::string& text) { Emit(text, text.size()); }

 private:
  void Emit(const std::string& text, size_t end) {
    if (end <= emitted_) return;
    if (sink_) sink_(std::string_view(text).substr(emitted_, end - emitted_));
    emitted_ = end;
  }

  const std::vector<std::string>& stops_;
  const std::function<void(std::string_view)>& sink_;
  size_t hold_ = 0;
  size_t emitted_ = 0;
};

}  // namespace

std::string GenerateReportJson(const GenerateReport& r) {
  nlohmann::ordered_json j;
  j["prompt_ids"] = r.prompt_ids;
  j["ids"] = r.generated_ids;
  j["text"] = r.text;
  j["stop_reason"] = std::string(StopReasonName(r.stop_reason));
  j["prompt_tokens"] = r.prompt_tokens;
  j["generated_tokens"] = r.generated_tokens;
  j["prompt_ms"] = r.prompt_ms;
  j["generation_ms"] = r.generation_ms;
  j["prompt_tokens_per_s"] = r.prompt_tokens_per_s;
  j["generation_tokens_per_s"] = r.generation_tokens_per_s;
  j["seed"] = r.seed;
  j["ctx_size"] = r.ctx_size;
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  j["peak_alloc_bytes"] = r.peak_alloc_bytes;
  j["warnings"] = r.warnings;
  // Byte-fallback tokens can end the text inside a UTF-8 sequence: such bytes become
  // U+FFFD here; `ids` is exact.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string_view StopReasonName(StopReason r) {
  switch (r) {
    case StopReason::kNPredict:
      return "n_predict";
    case StopReason::kEos:
      return "eos";
    case StopReason::kStopString:
      return "stop_string";
    case StopReason::kContextFull:
      return "context_full";
    case StopReason::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

GenerateReport Generate(const GenerateOptions& o) {
  if (o.model_path.empty()) throw ConfigError("generate: option 'model' (-m) is required");
  api::CheckRunOptions(o, "generate");  // a bad option fails before the model loads
  const Model model(api::ModelOptionsFrom(o));
  return Generate(model, o);
}

GenerateReport Generate(const Model& model, const GenerateOptions& o) {
  GenerateReport r;
  const model::SamplerConfig sc = api::CheckRunOptions(o, "generate");
  r.seed = sc.seed;
  model::Sampler sampler(sc);

  const api::LoadedModel* loaded = model.impl().loaded.get();
  if (loaded->tokenizer == nullptr) throw ConfigError("generate: the model was loaded without its tokenizer");
  ExecContext ctx(model.options().num_threads);  // the run's KV cache and scratch
  r.warnings = model.warnings();
  const model::LlamaConfig& config = loaded->config;
  const tokenizer::Tokenizer& tok = *loaded->tokenizer;

  const int64_t declared = config.max_position_embeddings;
  r.ctx_size = o.ctx_size > 0 ? o.ctx_size : std::min(declared, GenerateOptions::kDefaultMaxCtx);
  if (r.ctx_size > declared)
    r.warnings.push_back(
        fmt::format("context {} is larger than the {} positions the model declares (max_position_embeddings); "
                    "output past {} may degrade",
                    r.ctx_size, declared, declared));

  const tokenizer::Vocab& vocab = tok.vocab();
  if (o.add_bos.has_value()) {
    r.prompt_ids = tok.Encode(o.prompt, /*add_special=*/false, o.parse_special);
    if (*o.add_bos) {
      if (vocab.bos_id == tokenizer::kNoToken)
        throw ConfigError(
            fmt::format("{}: add_bos is on but the vocabulary has no BOS token", loaded->tokenizer_source));
      r.prompt_ids.insert(r.prompt_ids.begin(), vocab.bos_id);
    }
  } else {
    r.prompt_ids = tok.Encode(o.prompt, /*add_special=*/true, o.parse_special);
  }
  r.prompt_tokens = static_cast<int64_t>(r.prompt_ids.size());
  if (r.prompt_ids.empty())
    throw ConfigError("generate: the prompt is empty and no BOS token is added: nothing to start from");
  if (r.prompt_tokens > r.ctx_size)
    throw ConfigError(fmt::format("generate: the prompt has {} tokens but the context (ctx, -c) holds {}",
                                  r.prompt_tokens, r.ctx_size));

  model::KvCache cache(ctx.allocator(), config, r.ctx_size);
  std::vector<float> logits(static_cast<size_t>(config.vocab_size));
  std::vector<int32_t> history = r.prompt_ids;

  const auto t0 = Clock::now();
  loaded->model->Forward(ctx, cache, r.prompt_ids, 0, logits);
  const auto t1 = Clock::now();
  r.prompt_ms = Ms(t0, t1);

  StopScanner scanner(o.stop_strings, o.on_piece);
  int64_t pos = r.prompt_tokens;  // position of the next token to forward
  int32_t prev = r.prompt_ids.back();
  r.stop_reason = StopReason::kNPredict;
  for (int64_t i = 0; o.n_predict < 0 || i < o.n_predict; ++i) {
    if (o.should_stop && o.should_stop()) {
      r.stop_reason = StopReason::kInterrupted;
      break;
    }
    const int32_t next = sampler.Sample(logits, history);
    // llama2.c ends a sample when BOS comes again; llama.cpp ends on EOS.
    if (next == vocab.eos_id || next == vocab.bos_id) {
      r.stop_reason = StopReason::kEos;
      break;
    }
    r.generated_ids.push_back(next);
    history.push_back(next);
    const bool stop = scanner.Append(r.text, tok.TokenPieceAfter(prev, next));
    prev = next;
    if (stop) {
      r.stop_reason = StopReason::kStopString;
      break;
    }
    if (o.n_predict >= 0 && i + 1 == o.n_predict) break;  // the last token needs no forward pass
    if (pos >= r.ctx_size) {
      r.stop_reason = StopReason::kContextFull;
      break;
    }
    loaded->model->Forward(ctx, cache, std::span(&history.back(), 1), pos, logits);
    ++pos;
  }
  scanner.Flush(r.text);
  const auto t2 = Clock::now();
  r.generation_ms = Ms(t1, t2);
  r.generated_tokens = static_cast<int64_t>(r.generated_ids.size());
  if (r.prompt_ms > 0) r.prompt_tokens_per_s = 1e3 * static_cast<double>(r.prompt_tokens) / r.prompt_ms;
  if (r.generation_ms > 0) r.generation_tokens_per_s = 1e3 * static_cast<double>(r.generated_tokens) / r.generation_ms;
  r.peak_rss_bytes = ReadRss().peak_bytes;
  r.peak_alloc_bytes = api::PeakAllocBytes(model, ctx);
  return r;
}

TokenizeResult Tokenize(const std::string& model_path, const std::string& tokenizer_path, std::string_view text,
                        bool add_special, bool parse_special) {
  if (model_path.empty() && tokenizer_path.empty())
    throw ConfigError("tokenize: give a model (-m) or a tokenizer (-t)");
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (!model_path.empty()) {
    ExecContext ctx(1);
    api::LoadOptions lo;
    lo.tokenizer_path = tokenizer_path;
    lo.load_weights = false;
    tok = std::move(api::LoadModel(model_path, lo, ctx)->tokenizer);
  } else {
    tok = std::make_unique<tokenizer::Tokenizer>(api::VocabFromFile(tokenizer_path, std::nullopt), tokenizer_path);
  }
  TokenizeResult r;
  r.ids = tok->Encode(text, add_special, parse_special);
  for (int32_t id : r.ids) r.pieces.push_back(tok->TokenPiece(id, /*render_special=*/true));
  return r;
}

}  // namespace nibble
