// RMSNorm over the last dimension (../shared/specs/gptq-lora-zero.md §4.2):
// y = g · (x / sqrt(mean(x²) + eps)), no mean subtraction, no bias. Highway dispatch.
#pragma once

#include <cstddef>

namespace nibble::kernels {

// x: [T, D] f32, g: [D] f32, y: [T, D] f32 (y may equal x; no other overlap).
// Per row: inv = 1 / sqrt(sum(x²) / D + eps) in f32, then y = g · (x · inv), the
// order of llama2.c run.c and of HF (cast before the gain multiply). noexcept.
void RmsNorm(const float* x, const float* g, float* y, size_t T, size_t D, float eps) noexcept;

// Scalar oracle: sum of squares, inverse root and products in double.
void RmsNormRef(const float* x, const float* g, float* y, size_t T, size_t D, float eps) noexcept;

// Backward of RmsNorm for rows x: [T, D] with upstream dy: [T, D]. With r = 1/sqrt(mean(x²)
// + eps) recomputed per row (as the forward computes it) and c = r³/D · Σ_i dy_i·g_i·x_i:
//   dx_j = r·g_j·dy_j − c·x_j          (written; dx may equal dy, not x)
//   dg_j += Σ_t dy_tj·x_tj·r_t        (accumulated into dg: [D])
// noexcept, no checks.
void RmsNormBackward(const float* x, const float* g, const float* dy, float* dx, float* dg, size_t T, size_t D,
                     float eps) noexcept;
// Scalar oracle: the same formulas in double.
void RmsNormBackwardRef(const float* x, const float* g, const float* dy, float* dx, float* dg, size_t T, size_t D,
                        float eps) noexcept;

}  // namespace nibble::kernels
