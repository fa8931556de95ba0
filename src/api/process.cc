// Process-level API: version string and memory figures.
#include "core/memory_probe.h"
#include "nibble/nibble.h"

namespace nibble {

MemoryStats ReadMemoryStats() {
  const RssSample s = ReadRss();
  return {s.current_bytes, s.peak_bytes};
}

const char* Version() { return "0.1.0"; }

}  // namespace nibble
