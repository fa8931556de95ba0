// Q5_1 scalar reference: dequantizer and the port of ggml's quantize_row_q5_1_ref
// (ggml-quants.c @d99724f).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q5_1/q5_1.h"

namespace nibble::quant::q5_1 {
namespace {

// trunc(v) for v = (x - min)/d + 0.5 in [0.5, 31.5]. ggml casts to uint8_t unclamped;
// the clamp to [0, 31] (NaN -> 0) only matters for non-finite input.
uint8_t TruncToCode(float v) {
  if (!(v >= 0.0f)) return 0;
  return static_cast<uint8_t>(std::min(v, 31.0f));
}

}  // namespace

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    uint32_t qh;
    std::memcpy(&qh, blk.qh, sizeof(qh));
    const float d = F16ToF32(blk.d);
    const float m = F16ToF32(blk.m);
    float* y = out + b * kBlockElems;
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      const uint32_t lo = (blk.qs[j] & 0xFu) | (((qh >> j) & 1u) << 4);
      const uint32_t hi = (blk.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
      // code*d is exact in f32 (5 + 11 bits): only the add rounds, FMA or not.
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
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
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    Block blk;
    blk.d = F32ToF16(d);
    blk.m = F32ToF16(min);
    uint32_t qh = 0;
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      const uint8_t lo = TruncToCode((x[j] - min) * id + 0.5f);
      const uint8_t hi = TruncToCode((x[j + 16] - min) * id + 0.5f);
      blk.qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    std::memcpy(blk.qh, &qh, sizeof(qh));
    std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
  }
}

// As Q4_1 with 31 steps: |u - code| <= 1/2, plus 31*|d - d16|, |min - m16| and the f32
// rounding slack d*2^-16 + 2^-22*max(|min|, |max|).
double RoundTripBound(const float* x, const void* block) noexcept {
  Block blk;
  std::memcpy(&blk, block, sizeof(Block));
  float min = FLT_MAX, max = -FLT_MAX;
  for (uint32_t j = 0; j < kBlockElems; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const double d = (max - min) / 31.0f;
  const double amax = std::max(std::fabs(min), std::fabs(max));
  return d * (0.5 + 0x1p-16) + 31.0 * std::fabs(d - F16ToF32(blk.d)) +
         std::fabs(static_cast<double>(min) - F16ToF32(blk.m)) + 0x1p-22 * amax;
}

}  // namespace nibble::quant::q5_1
