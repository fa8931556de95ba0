// Checking what users hand nibble before any work: input files (regular files only,
// bounded sizes), thread counts and seeds. Each error names the option or file, what
// was expected and what was found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nibble/api.h"

namespace nibble {

// Input limits (README "Input limits"): a prompt or chat template; a text corpus
// (perplexity -f, tokenize -f); a config or tokenizer JSON file.
inline constexpr uint64_t kMaxPromptFileBytes = 64ull << 20;
inline constexpr uint64_t kMaxTextFileBytes = 1ull << 30;
inline constexpr uint64_t kMaxConfigFileBytes = 256ull << 20;

// The whole of a regular file of at most `max_bytes`; `what` names it in errors
// ("prompt file (-f)"). IoError for a missing path (with the system's reason), a
// directory, a FIFO or device, or a larger file.
NIBBLE_API std::string ReadInputFile(const std::string& path, std::string_view what, uint64_t max_bytes);

// The most threads nibble accepts: 4x the CPUs this process may run on.
NIBBLE_API int MaxThreads();
// ConfigError unless n is 0 (all cores) or in [1, MaxThreads()]; `option` names the
// flag ("--threads") or field in the message.
NIBBLE_API void CheckThreads(long long n, std::string_view option);

// A seed as llama.cpp takes it: "-1" means a random seed (std::nullopt); otherwise a
// decimal in [0, 2^64-1]. ConfigError naming `option` for anything else.
NIBBLE_API std::optional<uint64_t> ParseSeed(std::string_view text, std::string_view option);

}  // namespace nibble
