// Hardware limits measured at run time, so every benchmark can report its ratio to
// them (C10): today the read-only memory bandwidth.
#pragma once

#include <cstddef>

namespace nibble::bench {

// Read-only bandwidth in bytes/s over a `num_bytes` buffer (touched before timing so no
// page reads as the shared zero page), split over `num_threads` OpenMP threads, each
// streaming its part with the widest Highway loads into a sum. Best of `passes`.
double MeasureReadBandwidth(int num_threads, size_t num_bytes, int passes);

// Bandwidth measured once at startup (main), by thread count 1 or 2; 0 if not measured.
double ProbeBandwidth(int num_threads);
void SetProbeBandwidth(int num_threads, double bytes_per_s);

}  // namespace nibble::bench
