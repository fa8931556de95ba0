// Running a model: text generation with streaming and sampling options, and
// tokenization (`nibble generate`, `nibble tokenize`).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/api.h"
#include "nibble/model.h"

namespace nibble {

struct GenerateOptions {
  std::string model_path;      // GGUF, llama2.c .bin, or HF safetensors file/directory
  std::string tokenizer_path;  // empty: from the model (GGUF metadata; llama2.c: tok512.bin or
                               // tokenizer.bin beside the model). A GGUF or llama2.c tokenizer .bin.
  std::string adapter_path;    // a PEFT LoRA adapter directory, applied unmerged (-a)
  std::string prompt;
  int32_t n_predict = 128;  // tokens to generate at most (< 0: until EOS or the context is full)
  // Sampling, llama.cpp semantics (see src/model/sampler.h).
  float temperature = 0.8f;  // <= 0: greedy
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  std::optional<uint64_t> seed;  // absent: a random seed (reported in GenerateReport::seed)
  int num_threads = 0;           // 0: all cores
  std::string weight_dtype = "auto";  // matrices at load: auto (as stored: bf16 stays bf16), f32 or bf16
  // 4-bit layers take int8 activations (llama.cpp's arithmetic, faster; not bitsandbytes'
  // compute-dtype semantics: docs/QUALITY.md shows the KL-divergence cost). Off by default.
  bool int8_activations = false;
  // The classifier quantized at load to int8 per row (LLM.int8() without outliers): half
  // the bytes per token of a bf16 classifier, like llama.cpp's Q8_0 output. Off by default.
  bool int8_classifier = false;
  // Load weights holding NaN or infinity instead of refusing them (--allow-nonfinite).
  bool allow_nonfinite = false;
  // KV cache positions. 0: the context the file declares, at most kDefaultMaxCtx. A value
  // above the declared context is allowed with a warning (llama.cpp does the same).
  int64_t ctx_size = 0;
  std::optional<bool> add_bos;  // absent: the vocabulary's add_bos flag
  bool parse_special = true;    // "<s>", "<|im_start|>" written in the prompt become their ids
  // Called with each piece of generated text as soon as it is final (text that could
  // still be the start of a stop string is held back until it is not).
  std::function<void(std::string_view piece)> on_piece;
  // Polled before each token: true stops the generation (StopReason::kInterrupted), e.g.
  // when the reader of the stream went away.
  std::function<bool()> should_stop;
  std::vector<std::string> stop_strings;  // generation stops before the first one that appears

  static constexpr int64_t kDefaultMaxCtx = 4096;
};

enum class StopReason { kNPredict, kEos, kStopString, kContextFull, kInterrupted };
NIBBLE_API std::string_view StopReasonName(StopReason r);  // "n_predict", "eos", "stop_string", "context_full", "interrupted"

struct GenerateReport {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prompt_ms = 0;      // the batched forward pass over the prompt
  double generation_ms = 0;  // sampling every generated token and forwarding all but the last
  double prompt_tokens_per_s = 0;
  double generation_tokens_per_s = 0;
  uint64_t peak_rss_bytes = 0;    // process high-water mark (mapped model pages included)
  uint64_t peak_alloc_bytes = 0;  // peak bytes held through nibble's allocator (KV cache, scratch, converted weights)
  uint64_t seed = 0;              // the seed used
  int64_t ctx_size = 0;           // KV cache positions used
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;  // EOS excluded
  std::string text;                    // generated text (stop string and what follows excluded)
  StopReason stop_reason = StopReason::kNPredict;
  std::vector<std::string> warnings;  // e.g. a context above the declared one
};

// The report as one JSON object (`nibble generate --json`): prompt_ids, ids (generated,
// EOS excluded), text, stop_reason, token counts, timings (ms, tokens/s), seed, ctx_size,
// peak memory and warnings. Text bytes that are not valid UTF-8 (a byte-fallback token
// cut mid-character) become U+FFFD; the ids are exact.
NIBBLE_API std::string GenerateReportJson(const GenerateReport& r);

// Loads the model and tokenizer, encodes the prompt, runs it in one batch and samples
// up to n_predict tokens. Throws ConfigError (bad option, vocabulary size mismatch,
// unsupported architecture, prompt longer than the context), FormatError / IoError
// (bad files), ShapeError (missing or misshapen tensors), each naming the field.
NIBBLE_API GenerateReport Generate(const GenerateOptions& options);
// The same run on a model loaded once. The options' load fields (model_path,
// tokenizer_path, adapter_path, weight_dtype, int8_*, allow_nonfinite, num_threads) are not read: the
// Model's own apply.
NIBBLE_API GenerateReport Generate(const Model& model, const GenerateOptions& options);

struct TokenizeResult {
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;  // each token's text, control tokens rendered ("<s>")
};

// Tokenizes `text` with the tokenizer of `model_path` or, when tokenizer_path is not
// empty, of that file (GGUF or llama2.c tokenizer .bin; with both, their vocabulary
// sizes must agree). add_special: BOS/EOS as the vocabulary asks; parse_special:
// control pieces written in the text become their ids.
NIBBLE_API TokenizeResult Tokenize(const std::string& model_path, const std::string& tokenizer_path,
                                   std::string_view text, bool add_special = true, bool parse_special = false);

}  // namespace nibble
