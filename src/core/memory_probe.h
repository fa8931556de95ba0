// Process memory as the kernel sees it: current and peak resident set size.
#pragma once

#include <cstddef>

namespace nibble {

struct RssSample {
  size_t current_bytes = 0;  // VmRSS
  size_t peak_bytes = 0;     // VmHWM (high-water mark since start)
};

// Reads /proc/self/status; falls back to getrusage for the peak. Never throws.
RssSample ReadRss();

}  // namespace nibble
