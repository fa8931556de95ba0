// Numerically stable softmax over one row, in place (max subtracted before exp), f32,
// with Highway dispatch; used by attention (scores) and the sampler.
#pragma once

#include <cstddef>

namespace nibble::kernels {

// x: [n] f32 finite values, n >= 1; replaced by exp(x - max) / sum. noexcept.
void Softmax(float* x, size_t n) noexcept;

// Scalar oracle: exp and sum in double.
void SoftmaxRef(float* x, size_t n) noexcept;

}  // namespace nibble::kernels
