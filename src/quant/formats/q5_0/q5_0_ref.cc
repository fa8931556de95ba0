// Q5_0 scalar reference: dequantizer and the port of ggml's quantize_row_q5_0_ref
// (ggml-quants.c @d99724f).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q5_0/q5_0.h"

namespace nibble::quant::q5_0 {
namespace {

// min(31, trunc(v)) for v = x/d + 16.5 in [0.5, 32.5]; NaN -> 0 (no undefined cast).
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
    float* y = out + b * kBlockElems;
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      const int lo = (blk.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo - kCodeOffset) * d;
      y[j + 16] = static_cast<float>(hi - kCodeOffset) * d;
    }
  }
}

void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept {
  auto* bytes = static_cast<uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const float* x = in + b * kBlockElems;
    float amax = 0.0f, max = 0.0f;  // signed value of largest magnitude, first occurrence
    for (uint32_t j = 0; j < kBlockElems; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    Block blk;
    blk.d = F32ToF16(d);
    uint32_t qh = 0;
    for (uint32_t j = 0; j < kBlockElems / 2; ++j) {
      const uint8_t lo = TruncToCode(x[j] * id + 16.5f);
      const uint8_t hi = TruncToCode(x[j + 16] * id + 16.5f);
      blk.qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    std::memcpy(blk.qh, &qh, sizeof(qh));
    std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
  }
}

// As Q4_0 with 16 steps a side: u = x/d in [-16, 16], |u - (code - 16)| <= 1/2, or <= 1
// where u > 15.5; bound |d|*(1 + 2^-16) + 16*|d - d16|.
double RoundTripBound(const float* x, const void* block) noexcept {
  Block blk;
  std::memcpy(&blk, block, sizeof(Block));
  float amax = 0.0f;
  for (uint32_t j = 0; j < kBlockElems; ++j) amax = std::max(amax, std::fabs(x[j]));
  const double d = amax / 16.0f;
  const double d16 = std::fabs(F16ToF32(blk.d));
  return d * (1.0 + 0x1p-16) + 16.0 * std::fabs(d - d16);
}

}  // namespace nibble::quant::q5_0
