// Hardware limits measured at run time, so every benchmark can report its ratio to
// them (C10): the read-only memory bandwidth, the f32 FMA peak and the bf16 dot peak.
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

// Compute peaks in FLOP/s over `num_threads` OpenMP threads, measured on first use (a few
// hundred ms, before any timing loop) and cached per thread count 1 or 2 (0 otherwise).
// f32: 12 independent chains of full-width Highway MulAdd (vfmadd231ps zmm on AVX3),
// 2 FLOP per lane. bf16: 12 chains of vdpbf16ps zmm (32 bf16 pairs into 16 f32 lanes,
// 64 FLOP per instruction); 0 on CPUs without AVX512-BF16. Best of 5 passes.
double ProbeFmaPeak(int num_threads);
double ProbeBf16DotPeak(int num_threads);

}  // namespace nibble::bench
