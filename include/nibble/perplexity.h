// Perplexity of a model on a text file (`nibble perplexity`): llama.cpp's protocol
// (non-overlapping windows, second half scored) or the Hugging Face sliding window.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nibble/api.h"

namespace nibble {

struct PerplexityOptions {
  std::string model_path;      // GGUF, llama2.c .bin, or HF safetensors file/directory
  std::string tokenizer_path;  // empty: the model's own (as GenerateOptions::tokenizer_path)
  std::string text_path;       // UTF-8 text, tokenized once as a whole
  // Window length in tokens. llama.cpp's default is 512 whatever the model declares; a
  // value above the declared context is allowed with a warning (as for generate).
  int64_t ctx = 512;
  int64_t stride = 0;      // 0: llama.cpp protocol; 1..ctx: Hugging Face sliding window
  int64_t max_chunks = 0;  // 0: every window; else at most this many (llama.cpp's --chunks)
  int num_threads = 0;     // 0: all cores
  // Called after each window with (windows done, windows total).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct PerplexityReport {
  double ppl = 0;
  double ppl_stderr = 0;  // llama.cpp's "+/-": ppl · sqrt(var(NLL) / (n - 1))
  double mean_nll = 0;    // nats per scored token
  int64_t text_tokens = 0;       // tokens of the whole text (BOS included when the vocab adds it)
  int64_t scored_tokens = 0;     // tokens whose NLL is averaged
  int64_t evaluated_tokens = 0;  // tokens run through the model (every window position)
  int64_t windows = 0;
  int64_t ctx = 0;
  int64_t stride = 0;
  double seconds = 0;       // the forward passes and scoring (loading and tokenizing excluded)
  double tokens_per_s = 0;  // evaluated_tokens / seconds
  uint64_t peak_rss_bytes = 0;
  uint64_t peak_alloc_bytes = 0;
  std::vector<std::string> warnings;
};

// Loads the model, tokenizes the text file once (with BOS first when the vocabulary
// adds one; llama.cpp's protocol then puts BOS at the start of every window) and scores
// it. Throws IoError for a missing text file, ConfigError for bad options or a text too
// short for one window (naming the file, its token count and ctx), and what loading a
// model throws.
NIBBLE_API PerplexityReport EvaluatePerplexity(const PerplexityOptions& options);

}  // namespace nibble
