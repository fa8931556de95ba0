// Bulk dtype conversion, f32 <-> {f16, bf16, tf32, f8_e4m3fn, f8_e5m2}, with
// Highway run-time dispatch. Bit-identical to the scalar reference in
// core/float_convert.h for every input (rounding, subnormals, inf, NaN payloads).
// Layer rule: kernels depend on core, Highway, oneDNN and OpenMP.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace nibble::kernels {

// True for the dtypes the two functions below accept: f32, f16, bf16, tf32,
// f8_e4m3fn, f8_e5m2 (tf32 is stored as 4-byte f32).
bool IsConvertible(DType t);

// dst[i] = convert(src[i]) for n elements; `dst` holds n elements of `to`.
// Single-threaded, noexcept, no validation (callers check dtypes and sizes).
void ConvertFromF32(DType to, const float* src, void* dst, size_t n) noexcept;
// dst[i] = f32(src[i]); `src` holds n elements of `from`. Exact.
void ConvertToF32(DType from, const void* src, float* dst, size_t n) noexcept;

// Scalar references (plain loops over core/float_convert.h): the oracle for tests.
void ConvertFromF32Ref(DType to, const float* src, void* dst, size_t n) noexcept;
void ConvertToF32Ref(DType from, const void* src, float* dst, size_t n) noexcept;

// Multi-threaded wrappers: split n into contiguous chunks of whole cache lines
// over `num_threads` OpenMP threads.
void ConvertFromF32Parallel(int num_threads, DType to, const float* src, void* dst, size_t n) noexcept;
void ConvertToF32Parallel(int num_threads, DType from, const void* src, float* dst, size_t n) noexcept;

}  // namespace nibble::kernels
