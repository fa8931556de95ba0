// Training data beyond plain text: instruction JSONL in the layouts users bring (Dolly/HH
// prompt+response, GSM8K question+answer, Alpaca instruction+input+output, Self-Instruct
// instruction+instances), formatted with a prompt template or the model's chat template,
// tokenized with the prompt's labels masked, and cut into padded micro-batches.
//
// The tokenization follows TRL's SFTTrainer (prompt-completion data): the prompt and the
// prompt+completion are tokenized separately, the first len(prompt) tokens of the latter
// are the prompt (no loss unless train_on_prompt), and EOS ends the completion unless a
// chat template already closes the turn. Sequences longer than seq_len are truncated on
// the right (transformers' max_length truncation).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace nibble::train {

enum class DataLayout {
  kPromptResponse,  // {"prompt", "response"}: Dolly/HH; the prompt is already templated
  kQuestionAnswer,  // {"question", "answer"}: GSM8K
  kAlpaca,          // {"instruction", "input" (optional), "output"}
  kSelfInstruct,    // {"instruction", "instances": [{"input", "output"}, ...]}: one record per instance
};
std::string_view LayoutName(DataLayout l);

// One instruction example, before formatting.
struct InstructionRecord {
  std::string instruction;  // the prompt (kPromptResponse: the already templated prompt)
  std::string input;        // optional context (Alpaca, Self-Instruct)
  std::string output;       // the response
  size_t line = 0;          // 1-based line of the JSONL file
};

struct InstructionFile {
  DataLayout layout = DataLayout::kAlpaca;
  std::vector<InstructionRecord> records;
};

// Parses JSONL `text` read from `path` (for messages). The layout is decided by the first
// non-blank line's keys; every line must then carry that layout's fields as strings.
// ConfigError "path:line: ..." naming the missing or mistyped field, invalid JSON, or a
// file with no records.
InstructionFile ParseInstructionJsonl(const std::string& path, std::string_view text);

enum class PromptTemplate {
  kAuto,    // kNone for prompt/response data (already templated), else the model's chat
            // template when it has one, else Alpaca
  kModel,   // the model's chat template (Jinja): user turn, then the assistant turn
  kAlpaca,  // Stanford Alpaca's two prompts (with and without input)
  kChatml,  // <|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n...<|im_end|> (then EOS unless
            // <|im_end|> is the tokenizer's EOS)
  kNone,    // the instruction (and input, after a blank line) as is, then the response
};
// "auto", "model", "alpaca", "chatml", "none"; ConfigError otherwise.
PromptTemplate ParsePromptTemplate(std::string_view name);
std::string_view TemplateName(PromptTemplate t);
PromptTemplate ResolveTemplate(PromptTemplate requested, DataLayout layout, bool model_has_chat_template);

// The model's chat template and its special strings (for kModel).
struct ChatTemplateText {
  std::string tmpl, bos, eos;
};

// A record as prompt and completion text. `chat`: rendered by the model's chat template,
// which writes its own BOS and end of turn, so the tokenizer adds neither and no EOS is
// appended. `parse_special`: special-token text (<|im_start|>) becomes its token.
struct FormattedExample {
  std::string prompt, completion;
  bool chat = false;
  bool parse_special = false;
};
FormattedExample FormatRecord(const InstructionRecord& r, PromptTemplate t, const ChatTemplateText* chat);

// Examples as flat token and target arrays: targets[t] is the label of position t (the
// next token, or -100 where no loss counts), as the model consumes them (already shifted).
class ExampleSet {
 public:
  void Add(std::span<const int32_t> tokens, std::span<const int32_t> targets);
  size_t size() const { return offsets_.size() - 1; }
  size_t length(size_t i) const { return offsets_[i + 1] - offsets_[i]; }
  std::span<const int32_t> tokens(size_t i) const { return {tokens_.data() + offsets_[i], length(i)}; }
  std::span<const int32_t> targets(size_t i) const { return {targets_.data() + offsets_[i], length(i)}; }
  size_t total_tokens() const { return tokens_.size(); }
  size_t counted_targets() const;  // targets that are not -100
  size_t max_length() const;
  ExampleSet Subset(std::span<const size_t> idx) const;
  // A digest of every token and target, to recognise the same data on resume.
  uint64_t Fingerprint() const;

 private:
  std::vector<int32_t> tokens_, targets_;
  std::vector<size_t> offsets_{0};
};

struct TokenizeStats {
  size_t records = 0;
  size_t truncated = 0;        // longer than seq_len, cut on the right
  size_t dropped = 0;          // no response token left inside seq_len
  size_t prefix_mismatch = 0;  // tokenize(prompt) is not a prefix of tokenize(prompt+completion)
};

// Formats and tokenizes every record. ConfigError naming the file and line when a chat
// template fails on a record (a role the template refuses, for example).
ExampleSet TokenizeInstructions(const InstructionFile& f, const std::string& path, PromptTemplate t,
                                const ChatTemplateText* chat, const tokenizer::Tokenizer& tok, size_t seq_len,
                                bool train_on_prompt, TokenizeStats* stats);

// Plain text as run_clm's group_texts: consecutive windows of seq_len tokens (the rest
// dropped), each predicting its own next tokens (the last position -100). ConfigError
// when the stream holds fewer than seq_len tokens.
ExampleSet PackTokens(std::span<const int32_t> stream, size_t seq_len, const std::string& source);

// A seeded split: a permutation of the examples; the last ceil(n·fraction) go to `val`
// (at least 1 when fraction > 0), the rest, in their file order, to `train`. ConfigError
// when either side would be empty.
void SplitTrainVal(const ExampleSet& all, double fraction, uint64_t seed, ExampleSet* train, ExampleSet* val);

// A micro-batch of B examples padded on the right to the longest of them (T): padding
// tokens are `pad_id`, their targets -100. Causal attention means padding never reaches
// the real tokens before it, so no attention mask is needed.
struct PaddedBatch {
  size_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets;  // [B·T]
};
void FillPadded(const ExampleSet& s, std::span<const size_t> ids, int32_t pad_id, PaddedBatch* out);

// The order examples are visited in: each epoch a fresh seeded permutation (the HF
// Trainer's RandomSampler reshuffles every epoch); Next() returns one and advances.
class ExampleOrder {
 public:
  ExampleOrder(size_t n, uint64_t seed);
  size_t Next();
  uint64_t visited() const { return visited_; }
  double epoch() const { return static_cast<double>(visited_) / static_cast<double>(n_); }
  // Continue as if `visited` examples had been drawn already (a resumed run).
  void Seek(uint64_t visited);

 private:
  void Shuffle();
  size_t n_, pos_ = 0;
  uint64_t visited_ = 0, seed_, epoch_ = 0;
  std::vector<size_t> perm_;
};

}  // namespace nibble::train
