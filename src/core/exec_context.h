// ExecContext: what heavy functions need besides their arguments (C6): thread
// count, the allocator that counts bytes, and the CPU features probed once.
#pragma once

#include "core/allocator.h"

namespace nibble {

class ExecContext {
 public:
  // num_threads <= 0 means "all cores" (omp_get_num_procs at construction).
  explicit ExecContext(int num_threads = 0);

  int num_threads() const { return num_threads_; }
  Allocator& allocator() { return allocator_; }

 private:
  int num_threads_;
  Allocator allocator_;
};

}  // namespace nibble
