// Dense f32 matrix multiplication y = x · wᵀ for weights stored [out, in] (PyTorch and
// llama2.c order): a GEMV path for one row of x and a tiled path for prompts, both with
// Highway run-time dispatch and OpenMP over the output columns.
#pragma once

#include <cstddef>
#include <vector>

#include "core/cpu_features.h"

namespace nibble::kernels {

// Shapes (row-major, no padding): M rows of activations, K inputs, N outputs.
// x: [M, K] f32, w: [N, K] f32, y: [M, N] f32 (written, never read; must not alias x or w).
// M == 1 takes the GEMV path. The N outputs are split into contiguous blocks over
// `num_threads` OpenMP threads (small products run on one thread). noexcept, no checks.
void MatMul(int num_threads, const float* x, const float* w, float* y, size_t M, size_t N, size_t K) noexcept;

// Scalar oracle: every dot product accumulated in double, rounded once to f32.
void MatMulRef(const float* x, const float* w, float* y, size_t M, size_t N, size_t K) noexcept;

// The dense kernels' paths under the CPU cap in force (f32 and bf16 matmuls, and the
// Highway element-wise kernels), for `nibble --version`.
std::vector<KernelPath> DenseKernelPaths();

}  // namespace nibble::kernels
