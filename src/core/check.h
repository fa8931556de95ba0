// Internal invariants (tier 2 of the error rules): NB_CHECK is always on and aborts
// with file:line; NB_DCHECK exists only in debug builds. Never used on untrusted input.
// Layer rule: core depends on std, fmt and Highway base headers only.
#pragma once

#include <fmt/core.h>

namespace nibble::detail {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace nibble::detail

#define NB_CHECK(cond, ...)                                                                  \
  do {                                                                                       \
    if (!(cond)) [[unlikely]]                                                                \
      ::nibble::detail::CheckFailed(__FILE__, __LINE__, #cond, ::fmt::format(__VA_ARGS__)); \
  } while (0)

#ifndef NDEBUG
#define NB_DCHECK(cond, ...) NB_CHECK(cond, __VA_ARGS__)
#else
#define NB_DCHECK(cond, ...) \
  do {                       \
  } while (0)
#endif
