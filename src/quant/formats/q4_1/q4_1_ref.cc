// Q4_1 scalar reference: the oracle for the Highway dequantizer and the port of
// ggml's quantize_row_q4_1_ref (ggml-quants.c @d99724f).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q4_1/q4_1.h"

namespace nibble::quant::q4_1 {
namespace {

// min(15, trunc(v)) for v = (x - min)/d + 0.5 >= 0.5; NaN -> 0 (no undefined cast).
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
    const float m = F16ToF32(blk.m);
    float* y = out + b * kBlockElems;
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      // code*d is exact in f32 (4 + 11 bits): only the add rounds, FMA or not.
      y[j] = static_cast<float>(blk.qs[j] & 0xF) * d + m;
      y[j + 16] = static_cast<float>(blk.qs[j] >> 4) * d + m;
    }
  }
}

void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept {
  auto* bytes = static_cast<uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const float* x = in + b * kBlockElems;
    float min = FLT_MAX, max = -FLT_MAX;
    for (uint32_t j = 0; j < kBlockElems; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    Block blk;
    blk.d = F32ToF16(d);
    blk.m = F32ToF16(min);
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      const uint8_t lo = TruncToCode((x[j] - min) * id + 0.5f);
      const uint8_t hi = TruncToCode((x[j + 16] - min) * id + 0.5f);
      blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
  }
}

// With u = (x - min)/d in [0, 15], code = floor(u + 1/2) clipped to 15, |u - code| <= 1/2.
// Stored d16, m16 add |code|*|d - d16| <= 15*|d - d16| and |min - m16|; the f32 rounding
// of (x - min)*id and of code*d16 + m16 is covered by d*2^-16 + 2^-22*max(|min|, |max|).
double RoundTripBound(const float* x, const void* block) noexcept {
  Block blk;
  std::memcpy(&blk, block, sizeof(Block));
  float min = FLT_MAX, max = -FLT_MAX;
  for (uint32_t j = 0; j < kBlockElems; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const double d = (max - min) / 15.0f;
  const double amax = std::max(std::fabs(min), std::fabs(max));
  return d * (0.5 + 0x1p-16) + 15.0 * std::fabs(d - F16ToF32(blk.d)) +
         std::fabs(static_cast<double>(min) - F16ToF32(blk.m)) + 0x1p-22 * amax;
}

}  // namespace nibble::quant::q4_1
