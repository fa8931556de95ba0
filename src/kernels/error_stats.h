// Element-wise error statistics between a reference and an approximation, used to
// report what a conversion or quantization introduced.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace nibble::kernels {

struct ErrorStats {
  double max_abs = 0;       // max |b - a| over elements where both are finite
  double sum_abs = 0;       // sum of the same (double accumulation)
  double max_rel = 0;       // max |b - a| / |a| where |a| >= 1e-30 and both finite
  uint64_t count = 0;       // elements compared (both finite)
  uint64_t nonfinite = 0;   // a finite, b inf or NaN (overflow in the narrow format)

  void Merge(const ErrorStats& o);
};

// Compares a (reference) with b; both hold n f32 values. Elements whose
// reference is inf/NaN are skipped. noexcept, no validation.
ErrorStats ComputeErrorStats(const float* a, const float* b, size_t n) noexcept;
// The same over `num_threads` OpenMP threads (fixed chunking, so the result does
// not depend on scheduling: partial sums are merged in chunk order).
ErrorStats ComputeErrorStatsParallel(int num_threads, const float* a, const float* b, size_t n) noexcept;
// The error of storing `x` as `dtype` (one of IsConvertible's): decodes `encoded`
// (n elements of dtype) 64 Ki elements at a time into a per-thread buffer and
// compares with x, so no full-size f32 copy is needed.
ErrorStats ComputeRoundTripErrorParallel(int num_threads, DType dtype, const float* x, const void* encoded,
                                         size_t n) noexcept;

}  // namespace nibble::kernels
