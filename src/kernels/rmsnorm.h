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

}  // namespace nibble::kernels
