// ExecContext construction.
#include "core/exec_context.h"

#include <thread>

namespace nibble {

ExecContext::ExecContext(int num_threads) {
  if (num_threads <= 0) {
    const unsigned hc = std::thread::hardware_concurrency();
    num_threads = hc == 0 ? 1 : static_cast<int>(hc);
  }
  num_threads_ = num_threads;
}

}  // namespace nibble
