// nibble/input.h: the public checks on files, thread counts and seeds.
#include "nibble/input.h"

#include <fmt/format.h>

#include <charconv>

#include "core/exec_context.h"
#include "io/text_file.h"
#include "nibble/error.h"

namespace nibble {

std::string ReadInputFile(const std::string& path, std::string_view what, uint64_t max_bytes) {
  return io::ReadRegularFile(path, what, max_bytes);
}

int MaxThreads() { return MaxThreadCount(); }

void CheckThreads(long long n, std::string_view option) { CheckThreadCount(n, option); }

std::optional<uint64_t> ParseSeed(std::string_view text, std::string_view option) {
  if (text == "-1") return std::nullopt;
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v, 10);
  if (text.empty() || ec != std::errc() || p != end || text.front() == '+' || text.front() == '-')
    throw ConfigError(fmt::format("{}: expected -1 (random) or an integer from 0 to 18446744073709551615, got \"{}\"",
                                  option, text));
  return v;
}

}  // namespace nibble
