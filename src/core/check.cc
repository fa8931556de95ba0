// Failure path of NB_CHECK: print where and why, then abort.
#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace nibble::detail {

void CheckFailed(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "nibble: internal check failed at %s:%d: %s: %s\n", file, line, cond, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace nibble::detail
