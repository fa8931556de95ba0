// The llama.cpp-style sampling and run flags `generate` and `chat` share, registered
// on either options struct (GenerateOptions, ChatOptions: same field names).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>

namespace nibble::cli {

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed,
// --threads and --dtype. The seed goes to `seed` (CLI11 fills a plain integer).
template <class Options>
void AddSamplingFlags(CLI::App* cmd, Options& o, std::optional<uint64_t>& seed) {
  cmd->add_option("--temp", o.temperature, "Temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "Top-k sampling (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o.top_p, "Top-p (nucleus) sampling (1.0 = off)")->capture_default_str();
  cmd->add_option("--min-p", o.min_p, "Min-p sampling (0.0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o.repeat_penalty, "Repetition penalty (1.0 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o.repeat_last_n, "Tokens the repetition penalty looks back at")
      ->capture_default_str();
  cmd->add_option("--seed", seed, "RNG seed (default: random, printed in the summary)");
  cmd->add_option("--threads", o.num_threads, "Threads (default: all cores)");
  cmd->add_option("--dtype", o.weight_dtype, "Weight matrices at load: auto (as stored), f32 or bf16")
      ->capture_default_str();
  cmd->add_flag("--int8-activations", o.int8_activations,
                "4-bit layers quantize activations to int8 per block of 64 and multiply integers (VNNI): "
                "llama.cpp's arithmetic, faster than bitsandbytes' compute dtype, at a small KL-divergence cost");
  cmd->add_flag("--int8-classifier", o.int8_classifier,
                "Quantize the classifier (lm_head or the tied embedding) at load to int8 per row, run as LLM.int8() "
                "without outliers: half the bytes per token of bf16 (llama.cpp stores it as Q8_0)");
}

}  // namespace nibble::cli
