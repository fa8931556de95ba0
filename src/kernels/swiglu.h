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

// Backward of SwiGlu: with s = sigmoid(gate) (the forward's exp and clamp),
//   dgate = dout · up · s · (1 + gate · (1 − s)),   dup = dout · gate · s.
// gate, up, dout: [n] f32; dgate, dup: [n] f32 written (each may equal gate, up or dout:
// every lane is read before it is written). noexcept.
void SwiGluBackward(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                    size_t n) noexcept;
// Scalar oracle in double.
void SwiGluBackwardRef(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                       size_t n) noexcept;

}  // namespace nibble::kernels
