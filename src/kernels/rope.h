// Rotary position embedding (../shared/specs/gptq-lora-zero.md §4.2) in both layouts:
// adjacent pairs (2j, 2j+1) (Meta, llama2.c, GGUF "llama") and rotate-half (j, j+Dh/2)
// (Hugging Face). Scalar: O(T·H·Dh) per layer is negligible next to the matmuls.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nibble::kernels {

enum class RopeLayout {
  kAdjacentPairs,  // dims (2j, 2j+1) rotate by angle_j
  kRotateHalf,     // dims (j, j + Dh/2) rotate by angle_j
};

// cos, sin: [Dh/2] f32 for position `pos`: angle_j = pos · inv_freq_j with
// inv_freq_j = 1 / theta^(2j/Dh), all in f32 as HF (autocast off) and llama2.c compute it.
void RopeAngles(int64_t pos, float theta, size_t Dh, float* cos, float* sin) noexcept;

// inv_freq: [Dh/2] f32, inv_freq_j = 1 / theta^(2j/Dh) (the table RopeAngles uses).
void RopeInvFreq(float theta, size_t Dh, float* inv_freq) noexcept;
// cos, sin: [half] f32 of angle_j = pos · inv_freq_j in f32 (HF multiplies in f32 too),
// for an inv_freq table that may have been rescaled (rope_scaling).
void RopeAnglesFromInvFreq(int64_t pos, const float* inv_freq, size_t half, float* cos, float* sin) noexcept;

// x: [n_heads, Dh] f32 of one position, rotated in place with that position's
// cos, sin: [Dh/2] f32 (from RopeAngles). Dh even. For each pair (a, b):
// a' = a·c − b·s, b' = b·c + a·s. noexcept.
void Rope(RopeLayout layout, float* x, size_t n_heads, size_t Dh, const float* cos, const float* sin) noexcept;

// Scalar oracle: angles, cos/sin and rotation in double, from pos and theta directly.
void RopeRef(RopeLayout layout, float* x, size_t n_heads, size_t Dh, int64_t pos, float theta) noexcept;

// Backward of Rope: the rotation is orthogonal, so the gradient rotates back by the same
// angle (the transpose): for each pair, da = da'·c + db'·s, db = db'·c − da'·s. dx:
// [n_heads, Dh] f32 of one position, in place, with the forward's cos, sin. noexcept.
void RopeBackward(RopeLayout layout, float* dx, size_t n_heads, size_t Dh, const float* cos,
                  const float* sin) noexcept;
// Scalar oracle in double, from pos and theta directly.
void RopeBackwardRef(RopeLayout layout, float* dx, size_t n_heads, size_t Dh, int64_t pos, float theta) noexcept;

}  // namespace nibble::kernels
