// Instruction data: JSONL layouts, prompt templates, tokenization with masked prompts,
// packing, the train/validation split and padded micro-batches.
#include "train/sft_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "nibble/error.h"
#include "tokenizer/chat_template.h"
#include "train/trainer.h"

namespace nibble::train {
namespace {

// A string field of a JSONL line; ConfigError naming the file, line and field.
std::string Field(const nlohmann::json& j, const char* key, const std::string& where, bool optional = false) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (optional) return {};
    throw ConfigError(fmt::format("{}: missing field '{}'", where, key));
  }
  if (!it->is_string()) throw ConfigError(fmt::format("{}: field '{}' must be a string, got {}", where, key, it->type_name()));
  return it->get<std::string>();
}

std::string Keys(const nlohmann::json& j) {
  std::string s;
  for (const auto& [k, v] : j.items()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

constexpr std::string_view kAlpacaWithInput =
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
    "response that appropriately completes the request.\n\n### Instruction:\n{}\n\n### Input:\n{}\n\n### Response:\n";
constexpr std::string_view kAlpacaNoInput =
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\n{}\n\n### Response:\n";

// splitmix64, for the data digest and the split's permutation seed.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::string_view LayoutName(DataLayout l) {
  switch (l) {
    case DataLayout::kPromptResponse: return "prompt/response (Dolly/HH, already templated)";
    case DataLayout::kQuestionAnswer: return "question/answer (GSM8K)";
    case DataLayout::kAlpaca: return "instruction/input/output (Alpaca)";
    case DataLayout::kSelfInstruct: return "instruction/instances (Self-Instruct)";
  }
  return "?";
}

InstructionFile ParseInstructionJsonl(const std::string& path, std::string_view text) {
  InstructionFile f;
  bool have_layout = false;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number overflow
      throw ConfigError(fmt::format("{}: not valid JSON ({})", where, e.what()));
    }
    if (!j.is_object()) throw ConfigError(fmt::format("{}: expected a JSON object, got {}", where, j.type_name()));
    if (!have_layout) {
      if (j.contains("prompt") || j.contains("response")) f.layout = DataLayout::kPromptResponse;
      else if (j.contains("question") || j.contains("answer")) f.layout = DataLayout::kQuestionAnswer;
      else if (j.contains("instances")) f.layout = DataLayout::kSelfInstruct;
      else if (j.contains("instruction") || j.contains("output")) f.layout = DataLayout::kAlpaca;
      else
        throw ConfigError(fmt::format(
            "{}: unknown record layout (keys: {}); expected prompt/response, question/answer, "
            "instruction/input/output or instruction/instances",
            where, Keys(j)));
      have_layout = true;
    }
    switch (f.layout) {
      case DataLayout::kPromptResponse:
        f.records.push_back({Field(j, "prompt", where), "", Field(j, "response", where), line_no});
        break;
      case DataLayout::kQuestionAnswer:
        f.records.push_back({Field(j, "question", where), "", Field(j, "answer", where), line_no});
        break;
      case DataLayout::kAlpaca:
        f.records.push_back(
            {Field(j, "instruction", where), Field(j, "input", where, true), Field(j, "output", where), line_no});
        break;
      case DataLayout::kSelfInstruct: {
        const std::string instruction = Field(j, "instruction", where);
        const auto it = j.find("instances");
        if (it == j.end() || !it->is_array() || it->empty())
          throw ConfigError(fmt::format("{}: field 'instances' must be a non-empty list of {{input, output}}", where));
        for (size_t k = 0; k < it->size(); ++k) {
          const nlohmann::json& inst = (*it)[k];
          const std::string w = fmt::format("{} instances[{}]", where, k);
          if (!inst.is_object()) throw ConfigError(fmt::format("{}: expected an object", w));
          f.records.push_back({instruction, Field(inst, "input", w, true), Field(inst, "output", w), line_no});
        }
        break;
      }
    }
  }
  if (f.records.empty()) throw ConfigError(fmt::format("{}: holds no records", path));
  return f;
}

PromptTemplate ParsePromptTemplate(std::string_view name) {
  if (name == "auto") return PromptTemplate::kAuto;
  if (name == "model") return PromptTemplate::kModel;
  if (name == "alpaca") return PromptTemplate::kAlpaca;
  if (name == "chatml") return PromptTemplate::kChatml;
  if (name == "none") return PromptTemplate::kNone;
  throw ConfigError(fmt::format("option 'template': expected auto, model, alpaca, chatml or none, got \"{}\"", name));
}

std::string_view TemplateName(PromptTemplate t) {
  switch (t) {
    case PromptTemplate::kAuto: return "auto";
    case PromptTemplate::kModel: return "model";
    case PromptTemplate::kAlpaca: return "alpaca";
    case PromptTemplate::kChatml: return "chatml";
    case PromptTemplate::kNone: return "none";
  }
  return "?";
}

PromptTemplate ResolveTemplate(PromptTemplate requested, DataLayout layout, bool model_has_chat_template) {
  if (requested != PromptTemplate::kAuto) return requested;
  if (layout == DataLayout::kPromptResponse) return PromptTemplate::kNone;
  return model_has_chat_template ? PromptTemplate::kModel : PromptTemplate::kAlpaca;
}

FormattedExample FormatRecord(const InstructionRecord& r, PromptTemplate t, const ChatTemplateText* chat) {
  const std::string user = r.input.empty() ? r.instruction : r.instruction + "\n\n" + r.input;
  switch (t) {
    case PromptTemplate::kAuto:
    case PromptTemplate::kNone: return {user, r.output, false, false};
    case PromptTemplate::kAlpaca:
      return {r.input.empty() ? fmt::format(fmt::runtime(kAlpacaNoInput), r.instruction)
                              : fmt::format(fmt::runtime(kAlpacaWithInput), r.instruction, r.input),
              r.output, false, false};
    case PromptTemplate::kChatml:
      return {"<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n", r.output + "<|im_end|>", false,
              true};
    case PromptTemplate::kModel: {
      if (chat == nullptr) throw ConfigError("--template model: the model has no chat template");
      const std::vector<ChatMessage> turn = {{"user", user}};
      const std::vector<ChatMessage> both = {{"user", user}, {"assistant", r.output}};
      std::string prompt = tokenizer::ApplyChatTemplate(chat->tmpl, turn, true, chat->bos, chat->eos);
      std::string full = tokenizer::ApplyChatTemplate(chat->tmpl, both, false, chat->bos, chat->eos);
      if (!full.starts_with(prompt))
        throw ConfigError("the chat template renders the user turn differently with and without the assistant's "
                          "reply; it cannot separate prompt from response");
      std::string completion = full.substr(prompt.size());
      return {std::move(prompt), std::move(completion), true, true};
    }
  }
  return {};
}

// ---- ExampleSet ----

void ExampleSet::Add(std::span<const int32_t> tokens, std::span<const int32_t> targets) {
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  targets_.insert(targets_.end(), targets.begin(), targets.end());
  offsets_.push_back(tokens_.size());
}

size_t ExampleSet::counted_targets() const {
  return static_cast<size_t>(std::count_if(targets_.begin(), targets_.end(), [](int32_t t) { return t != kIgnoreIndex; }));
}

size_t ExampleSet::max_length() const {
  size_t m = 0;
  for (size_t i = 0; i < size(); ++i) m = std::max(m, length(i));
  return m;
}

ExampleSet ExampleSet::Subset(std::span<const size_t> idx) const {
  ExampleSet s;
  for (size_t i : idx) s.Add(tokens(i), targets(i));
  return s;
}

uint64_t ExampleSet::Fingerprint() const {
  uint64_t h = Mix(size());
  for (size_t i = 0; i < size(); ++i) h = Mix(h ^ length(i));
  for (int32_t t : tokens_) h = Mix(h ^ static_cast<uint32_t>(t));
  for (int32_t t : targets_) h = Mix(h ^ static_cast<uint32_t>(t));
  return h;
}

ExampleSet TokenizeInstructions(const InstructionFile& f, const std::string& path, PromptTemplate t,
                                const ChatTemplateText* chat, const tokenizer::Tokenizer& tok, size_t seq_len,
                                bool train_on_prompt, TokenizeStats* stats) {
  TokenizeStats st;
  ExampleSet set;
  const int32_t eos = tok.vocab().eos_id;
  std::vector<int32_t> targets;
  for (const InstructionRecord& r : f.records) {
    ++st.records;
    FormattedExample ex;
    try {
      ex = FormatRecord(r, t, chat);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("{}:{}: {}", path, r.line, e.what()));
    }
    // Chat-rendered text carries its own BOS and turn tokens (apply_chat_template then
    // tokenizes with add_special_tokens=False); plain text gets the tokenizer's BOS.
    const bool add_special = !ex.chat;
    const std::vector<int32_t> prompt = tok.Encode(ex.prompt, add_special, ex.parse_special);
    std::vector<int32_t> ids = tok.Encode(ex.prompt + ex.completion, add_special, ex.parse_special);
    if (!ex.chat && eos != tokenizer::kNoToken && (ids.empty() || ids.back() != eos)) ids.push_back(eos);
    if (ids.size() < prompt.size() || !std::equal(prompt.begin(), prompt.end(), ids.begin())) ++st.prefix_mismatch;
    size_t prompt_len = std::min(prompt.size(), ids.size());
    if (ids.size() > seq_len) {
      ++st.truncated;
      ids.resize(seq_len);
    }
    // Position i predicts token i + 1, which counts when it is a response token.
    targets.assign(ids.size(), kIgnoreIndex);
    size_t counted = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      if (train_on_prompt || i + 1 >= prompt_len) {
        targets[i] = ids[i + 1];
        ++counted;
      }
    }
    if (counted == 0) {
      ++st.dropped;
      continue;
    }
    set.Add(ids, targets);
  }
  if (set.size() == 0)
    throw ConfigError(fmt::format("{}: none of the {} records keeps a response token within --seq-len {} (raise "
                                  "--seq-len)",
                                  path, st.records, seq_len));
  if (stats != nullptr) *stats = st;
  return set;
}

ExampleSet PackTokens(std::span<const int32_t> stream, size_t seq_len, const std::string& source) {
  const size_t windows = seq_len > 0 ? stream.size() / seq_len : 0;
  if (windows == 0)
    throw ConfigError(fmt::format("{}: the text has {} tokens, fewer than one window of --seq-len {}", source,
                                  stream.size(), seq_len));
  ExampleSet s;
  std::vector<int32_t> targets(seq_len);
  for (size_t w = 0; w < windows; ++w) {
    const std::span<const int32_t> tok = stream.subspan(w * seq_len, seq_len);
    std::copy(tok.begin() + 1, tok.end(), targets.begin());
    targets.back() = kIgnoreIndex;
    s.Add(tok, targets);
  }
  return s;
}

void SplitTrainVal(const ExampleSet& all, double fraction, uint64_t seed, ExampleSet* train, ExampleSet* val) {
  if (!(fraction > 0 && fraction < 1))
    throw ConfigError(fmt::format("option 'val_split': expected a fraction in (0, 1), got {}", fraction));
  const size_t n = all.size();
  const size_t n_val = std::max<size_t>(1, static_cast<size_t>(std::ceil(fraction * static_cast<double>(n))));
  if (n_val >= n)
    throw ConfigError(fmt::format("option 'val_split': {} of {} examples leaves none to train on", fraction, n));
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  std::mt19937_64 rng(Mix(seed ^ 0x5A17u));
  for (size_t i = n; i > 1; --i) std::swap(perm[i - 1], perm[static_cast<size_t>(rng() % i)]);
  std::vector<size_t> v(perm.end() - static_cast<std::ptrdiff_t>(n_val), perm.end());
  std::vector<size_t> t(perm.begin(), perm.end() - static_cast<std::ptrdiff_t>(n_val));
  std::sort(v.begin(), v.end());
  std::sort(t.begin(), t.end());
  *train = all.Subset(t);
  *val = all.Subset(v);
}

void FillPadded(const ExampleSet& s, std::span<const size_t> ids, int32_t pad_id, PaddedBatch* out) {
  out->B = ids.size();
  out->T = 0;
  for (size_t i : ids) out->T = std::max(out->T, s.length(i));
  out->tokens.assign(out->B * out->T, pad_id);
  out->targets.assign(out->B * out->T, kIgnoreIndex);
  for (size_t b = 0; b < ids.size(); ++b) {
    std::copy_n(s.tokens(ids[b]).data(), s.length(ids[b]), out->tokens.data() + b * out->T);
    std::copy_n(s.targets(ids[b]).data(), s.length(ids[b]), out->targets.data() + b * out->T);
  }
}

// ---- ExampleOrder ----

ExampleOrder::ExampleOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) { Shuffle(); }

void ExampleOrder::Shuffle() {
  perm_.resize(n_);
  for (size_t i = 0; i < n_; ++i) perm_[i] = i;
  std::mt19937_64 rng(seed_ + 0x9E3779B97F4A7C15ull * (epoch_ + 1));
  for (size_t i = n_; i > 1; --i) std::swap(perm_[i - 1], perm_[static_cast<size_t>(rng() % i)]);
  pos_ = 0;
}

size_t ExampleOrder::Next() {
  if (pos_ == n_) {
    ++epoch_;
    Shuffle();
  }
  ++visited_;
  return perm_[pos_++];
}

void ExampleOrder::Seek(uint64_t visited) {
  epoch_ = visited / n_;
  Shuffle();
  pos_ = static_cast<size_t>(visited % n_);
  visited_ = visited;
}

}  // namespace nibble::train
