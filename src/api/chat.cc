// nibble::ChatSession: the model's chat template rendered over the whole conversation
// each turn; the KV cache keeps the longest shared token prefix so a turn forwards
// only the new tokens; replies stop at EOS or an end-of-turn control token.
#include "nibble/chat.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <nlohmann/json.hpp>

#include "api/model_impl.h"
#include "api/model_loader.h"
#include "api/sampling_options.h"
#include "core/memory_probe.h"
#include "model/kv_cache.h"
#include "model/sampler.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "tokenizer/chat_template.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

std::string ReadText(const std::string& path, std::string_view what) {
  return io::ReadRegularFile(path, what, io::kMaxPromptFileBytes);
}

// transformers' tokenizer_config.json "chat_template": a string, or a list of
// {name, template} of which apply_chat_template uses "default".
std::optional<std::string> TemplateFromTokenizerConfig(const fs::path& cfg_path) {
  const nlohmann::json cfg = io::ReadJsonObject(cfg_path.string(), "tokenizer config");
  const auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string names;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
          !entry["template"].is_string())
        throw FormatError(fmt::format("{}: 'chat_template' list entries must be {{name, template}} strings",
                                      cfg_path.string()));
      if (entry["name"] == "default") return entry["template"].get<std::string>();
      names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
    }
    throw ConfigError(fmt::format("{}: 'chat_template' has no template named 'default' (found: {}); give one with "
                                  "--template FILE",
                                  cfg_path.string(), names));
  }
  throw FormatError(fmt::format("{}: 'chat_template' must be a string or a list, found {}", cfg_path.string(),
                                it->type_name()));
}

}  // namespace

std::optional<std::string> api::FindModelChatTemplate(const api::LoadedModel& m) {
  if (const io::GgufFile* g = m.source.gguf()) {
    const io::GgufKv* kv = g->FindKey("tokenizer.chat_template");
    if (kv == nullptr) return std::nullopt;
    if (const auto* s = std::get_if<std::string>(&kv->value.value)) return *s;
    throw FormatError(fmt::format("{}: key 'tokenizer.chat_template': expected a string, got {}", g->source(),
                                  api::GgufValueTypeName(kv->value)));
  }
  if (m.source.format() == api::FileFormat::kSafetensors) {
    const fs::path p(m.source.path());
    const fs::path dir = fs::is_directory(p) ? p : p.parent_path();
    if (fs::exists(dir / "chat_template.jinja")) return ReadText((dir / "chat_template.jinja").string(), "chat template");
    if (fs::exists(dir / "tokenizer_config.json")) return TemplateFromTokenizerConfig(dir / "tokenizer_config.json");
  }
  return std::nullopt;
}

struct ChatSession::Impl {
  Impl(const ChatOptions& options, const Model* borrowed)
      : o(options),
        owned(borrowed == nullptr ? std::make_unique<Model>(api::ModelOptionsFrom(options)) : nullptr),
        model(borrowed != nullptr ? borrowed : owned.get()),
        loaded(model->impl().loaded.get()),
        ctx(model->options().num_threads) {}

  ChatOptions o;
  std::unique_ptr<Model> owned;  // the one-shot constructor's model
  const Model* model;            // owned, or the caller's
  const api::LoadedModel* loaded;
  ExecContext ctx;  // the KV cache and scratch
  std::unique_ptr<model::Sampler> sampler;
  std::unique_ptr<model::KvCache> cache;
  std::string tmpl, bos, eos;
  std::vector<float> logits;
  std::vector<int32_t> cached;  // tokens whose K/V rows 0..size-1 the cache holds
  std::vector<ChatMessage> history;
  std::vector<std::string> warnings;
  ChatSummary summary;

  std::vector<ChatMessage> Conversation() const {
    std::vector<ChatMessage> msgs;
    if (!o.system_prompt.empty()) msgs.push_back({"system", o.system_prompt});
    msgs.insert(msgs.end(), history.begin(), history.end());
    return msgs;
  }

  bool EndsTurn(int32_t id) const {
    const tokenizer::Vocab& v = loaded->tokenizer->vocab();
    if (id == v.eos_id || id == v.bos_id) return true;
    // <|im_end|>, <|eot_id|>, </s>...: a reply never contains a control token.
    return static_cast<size_t>(id) < v.types.size() && v.types[static_cast<size_t>(id)] == tokenizer::TokenType::kControl;
  }
};

namespace {

const Model* CheckedForChat(const ChatOptions& o) {
  if (o.model_path.empty()) throw ConfigError("chat: option 'model' (-m) is required");
  api::CheckRunOptions(o, "chat");
  return nullptr;  // the session loads its own
}

}  // namespace

ChatSession::ChatSession(const ChatOptions& options) : ChatSession(CheckedForChat(options), options) {}
ChatSession::ChatSession(const Model& model, const ChatOptions& options) : ChatSession(&model, options) {}

ChatSession::ChatSession(const Model* model, const ChatOptions& options)
    : impl_(std::make_unique<Impl>(options, model)) {
  Impl& s = *impl_;
  const ChatOptions& o = s.o;
  const model::SamplerConfig sc = api::CheckRunOptions(o, "chat");
  s.summary.seed = sc.seed;
  s.sampler = std::make_unique<model::Sampler>(sc);
  if (s.loaded->tokenizer == nullptr) throw ConfigError("chat: the model was loaded without its tokenizer");
  s.warnings = s.model->warnings();
  if (!o.template_path.empty()) {
    s.tmpl = ReadText(o.template_path, "chat template (--template)");
  } else if (auto t = api::FindModelChatTemplate(*s.loaded)) {
    s.tmpl = std::move(*t);
  } else {
    throw ConfigError(fmt::format(
        "{}: the model has no chat template (GGUF key 'tokenizer.chat_template', or chat_template.jinja / "
        "tokenizer_config.json 'chat_template' beside HF weights); give one with --template FILE",
        s.model->options().model_path));
  }
  const tokenizer::Tokenizer& tok = *s.loaded->tokenizer;
  const tokenizer::Vocab& vocab = tok.vocab();
  if (vocab.bos_id != tokenizer::kNoToken) s.bos = tok.TokenPiece(vocab.bos_id, /*render_special=*/true);
  if (vocab.eos_id != tokenizer::kNoToken) s.eos = tok.TokenPiece(vocab.eos_id, /*render_special=*/true);
  // Render once now so a template outside the subset fails before the first message.
  tokenizer::ApplyChatTemplate(s.tmpl, s.Conversation(), true, s.bos, s.eos);

  const int64_t declared = s.loaded->config.max_position_embeddings;
  s.summary.ctx_size = o.ctx_size > 0 ? o.ctx_size : std::min(declared, GenerateOptions::kDefaultMaxCtx);
  if (s.summary.ctx_size > declared)
    s.warnings.push_back(fmt::format(
        "context {} is larger than the {} positions the model declares (max_position_embeddings); output past {} "
        "may degrade",
        s.summary.ctx_size, declared, declared));
  s.cache = std::make_unique<model::KvCache>(s.ctx.allocator(), s.loaded->config, s.summary.ctx_size);
  s.logits.resize(static_cast<size_t>(s.loaded->config.vocab_size));
}

ChatSession::~ChatSession() = default;
ChatSession::ChatSession(ChatSession&&) noexcept = default;
ChatSession& ChatSession::operator=(ChatSession&&) noexcept = default;

ChatReply ChatSession::Send(std::string_view user_text) {
  Impl& s = *impl_;
  const tokenizer::Tokenizer& tok = *s.loaded->tokenizer;
  const int64_t ctx_size = s.summary.ctx_size;
  ChatReply r;
  s.history.push_back({"user", std::string(user_text)});
  try {
    const std::string prompt = tokenizer::ApplyChatTemplate(s.tmpl, s.Conversation(), true, s.bos, s.eos);
    // The template writes BOS itself where the model wants it (transformers encodes
    // the rendered chat with add_special_tokens=False); special pieces are parsed.
    r.prompt_ids = tok.Encode(prompt, /*add_special=*/false, /*parse_special=*/true);
    if (r.prompt_ids.empty()) throw ConfigError("chat: the rendered conversation is empty: nothing to start from");
    if (static_cast<int64_t>(r.prompt_ids.size()) >= ctx_size)
      throw ConfigError(fmt::format(
          "chat: the conversation has {} tokens but the context (ctx, -c) holds {}; /reset or raise --ctx",
          r.prompt_ids.size(), ctx_size));
  } catch (...) {
    s.history.pop_back();
    throw;
  }

  // Rows past the shared prefix are simply overwritten: Forward reads positions
  // below start_pos + T only.
  size_t keep = 0;
  if (s.o.reuse_kv)
    while (keep < s.cached.size() && keep < r.prompt_ids.size() && s.cached[keep] == r.prompt_ids[keep]) ++keep;
  if (keep == r.prompt_ids.size()) --keep;  // the last prompt token must run to give logits
  r.reused_tokens = static_cast<int64_t>(keep);
  r.forwarded_tokens = static_cast<int64_t>(r.prompt_ids.size() - keep);

  const auto t0 = Clock::now();
  s.loaded->model->Forward(s.ctx, *s.cache, std::span(r.prompt_ids).subspan(keep), static_cast<int64_t>(keep),
                           s.logits);
  const auto t1 = Clock::now();
  s.cached = r.prompt_ids;

  std::vector<int32_t> history = r.prompt_ids;  // what the repetition penalty looks back at
  int64_t pos = static_cast<int64_t>(r.prompt_ids.size());
  int32_t prev = r.prompt_ids.back();
  r.stop_reason = StopReason::kNPredict;
  for (int64_t i = 0; s.o.n_predict < 0 || i < s.o.n_predict; ++i) {
    if (s.o.should_stop && s.o.should_stop()) {
      r.stop_reason = StopReason::kInterrupted;
      break;
    }
    const int32_t next = s.sampler->Sample(s.logits, history);
    if (s.EndsTurn(next)) {
      r.stop_reason = StopReason::kEos;
      break;
    }
    ++r.generated_tokens;
    history.push_back(next);
    const std::string piece = tok.TokenPieceAfter(prev, next);
    prev = next;
    r.text += piece;
    if (s.o.on_piece) s.o.on_piece(piece);
    if (s.o.n_predict >= 0 && i + 1 == s.o.n_predict) break;  // the last token needs no forward pass
    if (pos >= ctx_size) {
      r.stop_reason = StopReason::kContextFull;
      break;
    }
    s.loaded->model->Forward(s.ctx, *s.cache, std::span(&history.back(), 1), pos, s.logits);
    s.cached.push_back(next);
    ++pos;
  }
  const auto t2 = Clock::now();
  r.prompt_ms = Ms(t0, t1);
  r.generation_ms = Ms(t1, t2);
  if (r.generation_ms > 0) r.generation_tokens_per_s = 1e3 * static_cast<double>(r.generated_tokens) / r.generation_ms;
  s.history.push_back({"assistant", r.text});

  ChatSummary& sum = s.summary;
  ++sum.turns;
  sum.forwarded_tokens += r.forwarded_tokens;
  sum.reused_tokens += r.reused_tokens;
  sum.generated_tokens += r.generated_tokens;
  sum.prompt_ms += r.prompt_ms;
  sum.generation_ms += r.generation_ms;
  return r;
}

void ChatSession::Reset() { impl_->history.clear(); }

const std::vector<ChatMessage>& ChatSession::messages() const { return impl_->history; }

std::string ChatSession::RenderPrompt(bool add_generation_prompt) const {
  const Impl& s = *impl_;
  return tokenizer::ApplyChatTemplate(s.tmpl, s.Conversation(), add_generation_prompt, s.bos, s.eos);
}

ChatSummary ChatSession::Summary() const {
  ChatSummary sum = impl_->summary;
  sum.peak_rss_bytes = ReadRss().peak_bytes;
  sum.peak_alloc_bytes = api::PeakAllocBytes(*impl_->model, impl_->ctx);
  return sum;
}

std::vector<std::string> ChatSession::warnings() const { return impl_->warnings; }

std::string RenderChatTemplate(std::string_view tmpl, const std::vector<ChatMessage>& messages,
                               bool add_generation_prompt, std::string_view bos_token, std::string_view eos_token) {
  return tokenizer::ApplyChatTemplate(tmpl, messages, add_generation_prompt, bos_token, eos_token);
}

}  // namespace nibble
