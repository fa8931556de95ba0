// Perplexity of a model on a text file (`nibble perplexity`): llama.cpp's protocol
// (non-overlapping windows, second half scored) or the Hugging Face sliding window.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nibble/api.h"
#include "nibble/model.h"

namespace nibble {

struct PerplexityOptions {
  std::string model_path;      // GGUF, llama2.c .bin, or HF safetensors file/directory
  std::string tokenizer_path;  // empty: the model's own (as GenerateOptions::tokenizer_path)
  std::string adapter_path;    // a PEFT LoRA adapter directory, applied unmerged (-a)
  std::string text_path;       // UTF-8 text, tokenized once as a whole
  // Window length in tokens. llama.cpp's default is 512 whatever the model declares; a
  // value above the declared context is allowed with a warning (as for generate).
  int64_t ctx = 512;
  int64_t stride = 0;      // 0: llama.cpp protocol; 1..ctx: Hugging Face sliding window
  int64_t max_chunks = 0;  // 0: every window; else at most this many (llama.cpp's --chunks)
  int num_threads = 0;     // 0: all cores
  std::string weight_dtype = "auto";  // matrices at load: auto (as stored: bf16 stays bf16), f32 or bf16
  // 4-bit layers take int8 activations (llama.cpp's arithmetic, faster; not bitsandbytes'
  // compute-dtype semantics: docs/QUALITY.md shows the KL-divergence cost). Off by default.
  bool int8_activations = false;
  // The classifier quantized at load to int8 per row (LLM.int8() without outliers): half
  // the bytes per token of a bf16 classifier, like llama.cpp's Q8_0 output. Off by default.
  bool int8_classifier = false;
  // Load weights holding NaN or infinity instead of refusing them (--allow-nonfinite).
  bool allow_nonfinite = false;
  // KL divergence (llama.cpp's --kl-divergence-base / --kl-divergence), llama.cpp protocol
  // only. kl_divergence_base: write this run's reference log-probs to the file.
  // kl_divergence: read a reference file and compare this model with it on the file's
  // own tokens and windows (text_path and ctx are then not used).
  std::string kl_divergence_base;
  // Replace an existing kl_divergence_base file (never an input: the model's files, the
  // text or the tokenizer are refused either way).
  bool overwrite = false;
  std::string kl_divergence;
  int32_t kl_top_k = 0;  // reference storage: 0 = every log-prob on a u16 grid; K = top K + the rest as one bin
  // Called after each window with (windows done, windows total).
  std::function<void(int64_t done, int64_t total)> progress;
};

// llama.cpp's KL-divergence figures (model vs the reference file), over the scored
// positions; the reference PPL comes from its stored NLLs.
struct KlDivergenceReport {
  std::string reference_model;  // as recorded in the file
  int64_t positions = 0;
  double ppl_base = 0, ppl = 0, delta_ppl = 0;
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;  // mean(NLL - NLL_base) = ln(PPL / PPL_base)
  double mean_kld = 0, mean_kld_stderr = 0;
  double max_kld = 0, p99_9_kld = 0, p99_kld = 0, p90_kld = 0, median_kld = 0, p10_kld = 0, min_kld = 0;
  double same_top1 = 0, same_top1_stderr = 0;  // fraction of positions with the same argmax token
  double rms_dp = 0, mean_dp = 0;              // p(actual token): model - reference
  bool top_k_lower_bound = false;              // the reference kept only its top k (KLD is a lower bound)
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
  std::optional<KlDivergenceReport> kld;  // with kl_divergence
  uint64_t kld_base_bytes = 0;            // with kl_divergence_base: the file's size
};

// Loads the model, tokenizes the text file once (with BOS first when the vocabulary
// adds one; llama.cpp's protocol then puts BOS at the start of every window) and scores
// it. Throws IoError for a missing text file, ConfigError for bad options or a text too
// short for one window (naming the file, its token count and ctx), and what loading a
// model throws.
NIBBLE_API PerplexityReport EvaluatePerplexity(const PerplexityOptions& options);
// The same on a model loaded once. The options' load fields (model_path, tokenizer_path,
// adapter_path, weight_dtype, int8_*, allow_nonfinite, num_threads) are not read: the Model's own apply.
NIBBLE_API PerplexityReport EvaluatePerplexity(const Model& model, const PerplexityOptions& options);

}  // namespace nibble
