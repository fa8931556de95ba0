// /proc/self/status reader for VmRSS and VmHWM.
#include "core/memory_probe.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstring>

namespace nibble {

RssSample ReadRss() {
  RssSample s;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), f)) {
      unsigned long kb = 0;
      if (std::sscanf(line, "VmRSS: %lu kB", &kb) == 1) s.current_bytes = kb * 1024;
      if (std::sscanf(line, "VmHWM: %lu kB", &kb) == 1) s.peak_bytes = kb * 1024;
    }
    std::fclose(f);
  }
  if (s.peak_bytes == 0) {
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) == 0) s.peak_bytes = static_cast<size_t>(ru.ru_maxrss) * 1024;
  }
  return s;
}

}  // namespace nibble
