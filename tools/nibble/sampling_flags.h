// The llama.cpp-style sampling and run flags `generate` and `chat` share, registered
// on either options struct (GenerateOptions, ChatOptions: same field names).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "nibble/error.h"
#include "nibble/input.h"

namespace nibble::cli {

// --threads N: 0 = all cores, else 1 to 4x the cores. Checked while parsing
// (nibble::CheckThreads), so a bad value is a one-line ConfigError naming the flag
// before anything loads (main catches it like any other error).
inline CLI::Option* AddThreadsFlag(CLI::App* cmd, int& threads) {
  return cmd->add_option("--threads", threads, "Threads: 0 = all cores (default), at most 4x the cores")
      ->each([](const std::string& v) {
        long long n = 0;
        size_t used = 0;
        try {
          n = std::stoll(v, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != v.size()) throw ConfigError("--threads: expected an integer, got \"" + v + "\"");
        CheckThreads(n, "--threads");
      });
}

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed,
// --threads and --dtype. The seed is kept as text for nibble::ParseSeed (-1 = random).
template <class Options>
void AddSamplingFlags(CLI::App* cmd, Options& o, std::optional<std::string>& seed) {
  // Ranges are checked by the sampler (one-line errors naming the flag).
  cmd->add_option("--temp", o.temperature, "Temperature, >= 0; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "Top-k sampling, >= 0 (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o.top_p, "Top-p (nucleus) sampling in [0, 1] (1.0 = off)")->capture_default_str();
  cmd->add_option("--min-p", o.min_p, "Min-p sampling in [0, 1] (0.0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o.repeat_penalty, "Repetition penalty, > 0 (1.0 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o.repeat_last_n, "Tokens the repetition penalty looks back at, >= 0 (0 = off)")
      ->capture_default_str();
  cmd->add_option("--seed", seed, "RNG seed, 0 to 2^64-1 (default or -1: random, printed in the summary)");
  AddThreadsFlag(cmd, o.num_threads);
  cmd->add_option("--dtype", o.weight_dtype, "Weight matrices at load: auto (as stored), f32 or bf16")
      ->capture_default_str();
  cmd->add_flag("--int8-activations", o.int8_activations,
                "4-bit layers quantize activations to int8 per block of 64 and multiply integers (VNNI): "
                "llama.cpp's arithmetic, faster than bitsandbytes' compute dtype, at a small KL-divergence cost");
  cmd->add_flag("--int8-classifier", o.int8_classifier,
                "Quantize the classifier (lm_head or the tied embedding) at load to int8 per row, run as LLM.int8() "
                "without outliers: half the bytes per token of bf16 (llama.cpp stores it as Q8_0)");
  cmd->add_flag("--allow-nonfinite", o.allow_nonfinite,
                "Load weights holding NaN or infinity instead of refusing them (the scan at load is skipped)");
}

}  // namespace nibble::cli
