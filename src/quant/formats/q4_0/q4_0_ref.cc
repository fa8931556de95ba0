// Q4_0 scalar reference: the oracle for the Highway dequantizer and the port of
// ggml's quantize_row_q4_0_ref (ggml-quants.c @d99724f).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q4_0/q4_0.h"

namespace nibble::quant::q4_0 {
namespace {

// min(15, trunc(v)) for v = x/d + 8.5, which lies in [0.5, 16.5] for finite input.
// ggml casts to int8_t; this clamps first (NaN -> 0) so no input is undefined behaviour.
uint8_t TruncToCode(float v) {
  if (!(v >= 0.0f)) return 0;
  return static_cast<uint8_t>(std::min(v, 15.0f));
}

}  // namespace

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    const float d = F16ToF32(blk.d);
    float* y = out + b * kBlockElems;
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      y[j] = static_cast<float>((blk.qs[j] & 0xF) - kCodeOffset) * d;
      y[j + 16] = static_cast<float>((blk.qs[j] >> 4) - kCodeOffset) * d;
    }
  }
}

void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept {
  auto* bytes = static_cast<uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const float* x = in + b * kBlockElems;
    // The signed value of largest magnitude, first occurrence; it maps to code 0
    // (value -8*d), so the grid reaches one step further on that side.
    float amax = 0.0f, max = 0.0f;
    for (uint32_t j = 0; j < kBlockElems; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    Block blk;
    blk.d = F32ToF16(d);
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      const uint8_t lo = TruncToCode(x[j] * id + 8.5f);
      const uint8_t hi = TruncToCode(x[j + 16] * id + 8.5f);
      blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
  }
}

// With u = x/d in [-8, 8] (code units), the decoded integer is floor(u + 1/2) clipped
// to 7, so |u - (code - 8)| <= 1/2, or <= 1 where u > 7.5 (the side opposite to max).
// Then |x - (code-8)*d16| <= |d|*(1 + 2^-16) + 8*|d - d16| (2^-16 covers f32 rounding).
double RoundTripBound(const float* x, const void* block) noexcept {
  Block blk;
  std::memcpy(&blk, block, sizeof(Block));
  float amax = 0.0f;
  for (uint32_t j = 0; j < kBlockElems; ++j) amax = std::max(amax, std::fabs(x[j]));
  const double d = amax / 8.0f;
  const double d16 = std::fabs(F16ToF32(blk.d));
  return d * (1.0 + 0x1p-16) + 8.0 * std::fabs(d - d16);
}

}  // namespace nibble::quant::q4_0
