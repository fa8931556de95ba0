// ExecContext: what heavy functions need besides their arguments (C6): thread
// count, the allocator that counts bytes, and the CPU features probed once.
#pragma once

#include <string_view>

#include "core/allocator.h"

namespace nibble {

// The CPUs nibble counts as "all cores" (std::thread::hardware_concurrency, at least 1),
// the most threads it accepts (4x that), and the check (ConfigError naming `option`).
int CoreCount();
int MaxThreadCount();
void CheckThreadCount(long long n, std::string_view option);

class ExecContext {
 public:
  // num_threads 0 means "all cores"; otherwise 1..MaxThreadCount() (ConfigError else).
  explicit ExecContext(int num_threads = 0);

  int num_threads() const { return num_threads_; }
  Allocator& allocator() { return allocator_; }

 private:
  int num_threads_;
  Allocator allocator_;
};

}  // namespace nibble
