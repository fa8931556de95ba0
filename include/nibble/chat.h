// Chatting with an instruction-tuned model (`nibble chat`): the conversation rendered
// with the model's Jinja2 chat template each turn, the KV cache kept between turns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/api.h"
#include "nibble/generate.h"
#include "nibble/model.h"

namespace nibble {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct ChatOptions {
  std::string model_path;      // GGUF, llama2.c .bin, or HF safetensors file/directory
  std::string tokenizer_path;  // empty: the model's own (as GenerateOptions)
  // A file holding a Jinja2 chat template. Empty: the model's (GGUF tokenizer.chat_template,
  // or chat_template.jinja / tokenizer_config.json "chat_template" beside HF weights).
  std::string adapter_path;    // a PEFT LoRA adapter directory, applied unmerged (-a)
  std::string template_path;
  std::string system_prompt;  // empty: no system message (the template's default applies)
  int32_t n_predict = -1;     // tokens per reply at most (< 0: until end of turn or a full context)
  // Sampling, as GenerateOptions (llama.cpp semantics).
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  std::optional<uint64_t> seed;  // absent: random (reported in ChatSummary::seed)
  int num_threads = 0;           // 0: all cores
  std::string weight_dtype = "auto";  // matrices at load: auto (as stored), f32 or bf16
  // 4-bit layers take int8 activations (llama.cpp's arithmetic, faster; not bitsandbytes'
  // compute-dtype semantics: docs/QUALITY.md shows the KL-divergence cost). Off by default.
  bool int8_activations = false;
  // The classifier quantized at load to int8 per row (LLM.int8() without outliers): half
  // the bytes per token of a bf16 classifier, like llama.cpp's Q8_0 output. Off by default.
  bool int8_classifier = false;
  // Load weights holding NaN or infinity instead of refusing them (--allow-nonfinite).
  bool allow_nonfinite = false;
  int64_t ctx_size = 0;          // 0: the declared context, at most GenerateOptions::kDefaultMaxCtx
  // Keep the KV cache between turns and forward only the tokens after the longest
  // prefix shared with what it holds. false: re-run the whole conversation each turn.
  bool reuse_kv = true;
  std::function<void(std::string_view piece)> on_piece;  // each piece of a reply as it is decoded
  // Polled before each generated token; true ends the reply (stop reason "interrupted"),
  // keeping what was generated so far in the conversation. `nibble chat` sets it from Ctrl-C.
  std::function<bool()> should_stop;
};

struct ChatReply {
  std::string text;  // the reply (end-of-turn token excluded)
  std::vector<int32_t> prompt_ids;  // the whole rendered conversation, tokenized
  int64_t reused_tokens = 0;        // prompt tokens whose KV entries were already cached
  int64_t forwarded_tokens = 0;     // prompt tokens run through the model this turn
  int64_t generated_tokens = 0;
  double prompt_ms = 0;
  double generation_ms = 0;
  double generation_tokens_per_s = 0;
  StopReason stop_reason = StopReason::kNPredict;  // kEos: EOS or an end-of-turn control token
};

struct ChatSummary {
  int64_t turns = 0;
  int64_t forwarded_tokens = 0;
  int64_t reused_tokens = 0;
  int64_t generated_tokens = 0;
  double prompt_ms = 0;
  double generation_ms = 0;
  uint64_t seed = 0;
  int64_t ctx_size = 0;
  uint64_t peak_rss_bytes = 0;
  uint64_t peak_alloc_bytes = 0;
};

class NIBBLE_API ChatSession {
 public:
  // Loads the model, tokenizer and template. Throws ConfigError when the model has no
  // chat template (suggesting --template) or the template is outside the supported
  // subset, plus everything Generate throws for bad files and options.
  explicit ChatSession(const ChatOptions& options);
  // A session on a model loaded once, which must outlive it. The options' load fields
  // (model_path, tokenizer_path, adapter_path, weight_dtype, int8_*, allow_nonfinite, num_threads)
  // are not read: the Model's own apply.
  ChatSession(const Model& model, const ChatOptions& options);
  ~ChatSession();
  ChatSession(ChatSession&&) noexcept;
  ChatSession& operator=(ChatSession&&) noexcept;

  // Adds a user message, renders the conversation with add_generation_prompt, runs the
  // new prompt tokens and samples the reply, which joins the history. Throws
  // ConfigError when the conversation no longer fits the context (history unchanged).
  ChatReply Send(std::string_view user_text);
  // Forgets the conversation (the system prompt stays).
  void Reset();

  const std::vector<ChatMessage>& messages() const;
  // The conversation so far rendered with the template.
  std::string RenderPrompt(bool add_generation_prompt) const;
  ChatSummary Summary() const;
  std::vector<std::string> warnings() const;  // e.g. a context above the declared one

 private:
  ChatSession(const Model* model, const ChatOptions& options);  // null: load from the options

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Renders a conversation with a Jinja2 chat template as transformers'
// apply_chat_template does (bos/eos are the special-token strings).
NIBBLE_API std::string RenderChatTemplate(std::string_view tmpl, const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt, std::string_view bos_token = {},
                                          std::string_view eos_token = {});

}  // namespace nibble
