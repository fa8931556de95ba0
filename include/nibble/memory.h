// Process memory figures for the one-line summaries every command prints.
#pragma once

#include <cstdint>

#include "nibble/api.h"

namespace nibble {

struct MemoryStats {
  uint64_t rss_bytes = 0;       // resident set now
  uint64_t peak_rss_bytes = 0;  // high-water mark of the resident set
};

NIBBLE_API MemoryStats ReadMemoryStats();

}  // namespace nibble
