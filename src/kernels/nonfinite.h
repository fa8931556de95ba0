// The load-time guard against NaN and infinity in weights: the first non-finite
// element of a dense float tensor, by its bit pattern (integer compares only, so the
// result does not depend on the CPU's SIMD target or on denormal modes). Highway dispatch.
#pragma once

#include <cstdint>

#include "nibble/dtype.h"

namespace nibble::kernels {

// Index of the first NaN or infinity among n values of `dtype` at `data` (f64, f32,
// tf32, f16, bf16, f8_e4m3fn: NaN only, f8_e5m2), or -1 when there is none or the dtype
// is not a dense float. Splits the scan over `num_threads` (0 or 1: this thread).
int64_t FindNonFinite(int num_threads, DType dtype, const void* data, int64_t n) noexcept;

}  // namespace nibble::kernels
