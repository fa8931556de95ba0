// ExecContext construction and the thread-count rule.
#include "core/exec_context.h"

#include <fmt/core.h>

#include <thread>

#include "nibble/error.h"

namespace nibble {

int CoreCount() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

int MaxThreadCount() { return 4 * CoreCount(); }

void CheckThreadCount(long long n, std::string_view option) {
  if (n == 0 || (n >= 1 && n <= MaxThreadCount())) return;
  throw ConfigError(fmt::format("{}: expected 0 (all {} cores) or 1 to {} (4x the cores), got {}", option, CoreCount(),
                                MaxThreadCount(), n));
}

ExecContext::ExecContext(int num_threads) {
  // Past a few times the cores threads only contend; far past, libgomp fails to create
  // them or crashes (issue 12: --threads 100000 was a SIGSEGV in GOMP_parallel).
  CheckThreadCount(num_threads, "num_threads");
  num_threads_ = num_threads == 0 ? CoreCount() : num_threads;
}

}  // namespace nibble
