// Q8_0 scalar reference: the oracle for the Highway dequantizer and the port of
// ggml's quantize_row_q8_0_ref (ggml-quants.c @d99724f).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q8_0/q8_0.h"

namespace nibble::quant::q8_0 {
namespace {

// roundf(v) as an int8 code; values outside [-128, 127] (and NaN, as 0) are clamped
// instead of hitting the undefined float->int conversion. In range it is ggml's cast.
int8_t RoundToCode(float v) {
  const float r = std::round(v);  // half away from zero, as C roundf
  if (!(r >= -128.0f)) return r < 0 ? -128 : 0;
  return static_cast<int8_t>(std::min(r, 127.0f));
}

}  // namespace

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    const float d = F16ToF32(blk.d);
    for (uint32_t j = 0; j < kBlockElems; ++j) out[b * kBlockElems + j] = static_cast<float>(blk.qs[j]) * d;
  }
}

void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept {
  auto* bytes = static_cast<uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const float* x = in + b * kBlockElems;
    float amax = 0.0f;
    for (uint32_t j = 0; j < kBlockElems; ++j) amax = std::max(amax, std::fabs(x[j]));
    // The codes use the f32 scale; only the stored scale is rounded to f16.
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    Block blk;
    blk.d = F32ToF16(d);
    for (uint32_t j = 0; j < kBlockElems; ++j) blk.qs[j] = RoundToCode(x[j] * id);
    std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
  }
}

// Per element, with u = x*id the value in code units (|u| <= 127):
//   |x - q*d16| <= |x - q*d| + |q|*|d - d16|,  |x - q*d| <= d*(1/2 + rounding of x*id),
// so the bound is d*(1/2 + 2^-16) + 127*|d - d16| (2^-16 >> the f32 rounding of u).
double RoundTripBound(const float* x, const void* block) noexcept {
  Block blk;
  std::memcpy(&blk, block, sizeof(Block));
  float amax = 0.0f;
  for (uint32_t j = 0; j < kBlockElems; ++j) amax = std::max(amax, std::fabs(x[j]));
  const double d = amax / 127.0f;
  const double d16 = F16ToF32(blk.d);
  return d * (0.5 + 0x1p-16) + 127.0 * std::fabs(d - d16);
}

}  // namespace nibble::quant::q8_0
