// RoPE: f32 angle tables, the in-place rotation for both layouts, and the double oracle.
#include "kernels/rope.h"

#include <cmath>

namespace nibble::kernels {
namespace {

// Index of the partner of pair j's first element: adjacent pairs use (2j, 2j+1),
// rotate-half uses (j, j + Dh/2).
inline void PairIndex(RopeLayout layout, size_t j, size_t Dh, size_t* a, size_t* b) {
  if (layout == RopeLayout::kAdjacentPairs) {
    *a = 2 * j;
    *b = 2 * j + 1;
  } else {
    *a = j;
    *b = j + Dh / 2;
  }
}

}  // namespace

void RopeInvFreq(float theta, size_t Dh, float* inv_freq) noexcept {
  for (size_t j = 0; j < Dh / 2; ++j)
    inv_freq[j] = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(Dh));
}

void RopeAnglesFromInvFreq(int64_t pos, const float* inv_freq, size_t half, float* cos, float* sin) noexcept {
  for (size_t j = 0; j < half; ++j) {
    const float angle = static_cast<float>(pos) * inv_freq[j];
    cos[j] = std::cos(angle);
    sin[j] = std::sin(angle);
  }
}

void RopeAngles(int64_t pos, float theta, size_t Dh, float* cos, float* sin) noexcept {
  for (size_t j = 0; j < Dh / 2; ++j) {
    const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(Dh));
    const float angle = static_cast<float>(pos) * inv_freq;
    cos[j] = std::cos(angle);
    sin[j] = std::sin(angle);
  }
}

namespace {

// Rotates each pair by angle_j with sin_j multiplied by `sign`: +1 is the forward, −1
// its transpose (the backward). Negating sin is exact, so both are the same arithmetic.
void Rotate(RopeLayout layout, float* x, size_t n_heads, size_t Dh, const float* cos, const float* sin,
            float sign) {
  for (size_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * Dh;
    for (size_t j = 0; j < Dh / 2; ++j) {
      size_t a, b;
      PairIndex(layout, j, Dh, &a, &b);
      const float xa = xh[a], xb = xh[b], s = sign * sin[j];
      xh[a] = xa * cos[j] - xb * s;
      xh[b] = xb * cos[j] + xa * s;
    }
  }
}

// The same in double from pos and theta.
void RotateRef(RopeLayout layout, float* x, size_t n_heads, size_t Dh, int64_t pos, float theta, double sign) {
  for (size_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * Dh;
    for (size_t j = 0; j < Dh / 2; ++j) {
      const double angle = static_cast<double>(pos) * std::pow(static_cast<double>(theta), -2.0 * j / Dh);
      const double c = std::cos(angle), sn = sign * std::sin(angle);
      size_t a, b;
      PairIndex(layout, j, Dh, &a, &b);
      const double xa = xh[a], xb = xh[b];
      xh[a] = static_cast<float>(xa * c - xb * sn);
      xh[b] = static_cast<float>(xb * c + xa * sn);
    }
  }
}

}  // namespace

void Rope(RopeLayout layout, float* x, size_t n_heads, size_t Dh, const float* cos, const float* sin) noexcept {
  Rotate(layout, x, n_heads, Dh, cos, sin, 1.0f);
}

void RopeBackward(RopeLayout layout, float* dx, size_t n_heads, size_t Dh, const float* cos,
                  const float* sin) noexcept {
  Rotate(layout, dx, n_heads, Dh, cos, sin, -1.0f);
}

void RopeBackwardRef(RopeLayout layout, float* dx, size_t n_heads, size_t Dh, int64_t pos, float theta) noexcept {
  RotateRef(layout, dx, n_heads, Dh, pos, theta, -1.0);
}

void RopeRef(RopeLayout layout, float* x, size_t n_heads, size_t Dh, int64_t pos, float theta) noexcept {
  RotateRef(layout, x, n_heads, Dh, pos, theta, 1.0);
}

}  // namespace nibble::kernels
