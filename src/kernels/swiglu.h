// SwiGLU gate of the Llama MLP (../shared/specs/gptq-lora-zero.md §4.2):
// out = silu(gate) · up with silu(z) = z · sigmoid(z). Highway dispatch.
#pragma once

#include <cstddef>

namespace nibble::kernels {

// gate, up, out: [n] f32 (out may equal gate or up). noexcept.
// silu(z) is computed as z / (1 + exp(-z)) with -z clamped to 88 (e^88 < FLT_MAX), so a
// very negative z gives a result below |z · up| · 2^-126 instead of inf/NaN.
void SwiGlu(const float* gate, const float* up, float* out, size_t n) noexcept;

// Scalar oracle in double, without the clamp.
void SwiGluRef(const float* gate, const float* up, float* out, size_t n) noexcept;

}  // namespace nibble::kernels
