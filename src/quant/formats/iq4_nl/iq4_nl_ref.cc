// IQ4_NL scalar reference: dequantizer and the port of ggml's quantize_row_iq4_nl_ref
// (quantize_row_iq4_nl_impl with block 32, no importance weights, ntry = -1;
// ggml-quants.c @d99724f).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/iq4_nl/iq4_nl.h"

namespace nibble::quant::iq4_nl {
namespace {

// ggml's GROUP_MAX_EPS: a block whose max |x| is below this stores d = 0.
constexpr float kGroupMaxEps = 1e-15f;
// Code written for every element of such a block. ggml leaves these nibbles to whatever
// its scratch buffer held; we write code 8 (value +1, the entry nearest zero).
constexpr uint8_t kZeroBlockCode = 8;

// Index of the codebook entry nearest v; ties between neighbours go to the upper one,
// values beyond either end to that end (ggml's best_index_int8). NaN -> 15.
int NearestCode(float v) {
  if (v <= kCodebook[0]) return 0;
  if (v >= kCodebook[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < kCodebook[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return v - kCodebook[hi - 1] < kCodebook[hi] - v ? hi - 1 : hi;
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
      y[j] = d * static_cast<float>(kCodebook[blk.qs[j] & 0xF]);
      y[j + 16] = d * static_cast<float>(kCodebook[blk.qs[j] >> 4]);
    }
  }
}

void QuantizeRef(const float* in, void* blocks, int64_t num_elems) noexcept {
  auto* bytes = static_cast<uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    const float* x = in + b * kBlockElems;
    Block blk;
    float amax = 0.0f, max = 0.0f;  // signed value of largest magnitude, first occurrence
    for (uint32_t j = 0; j < kBlockElems; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax < kGroupMaxEps) {
      blk.d = F32ToF16(0.0f);
      std::memset(blk.qs, kZeroBlockCode | (kZeroBlockCode << 4), sizeof(blk.qs));
      std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
      continue;
    }
    // First guess maps max onto kCodebook[0] = -127, then the scale is refit by weighted
    // least squares with weights x^2 (the sums run in f32 in element order, as ggml's).
    const float id = 1.0f / (max / static_cast<float>(kCodebook[0]));
    uint8_t codes[kBlockElems];
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (uint32_t j = 0; j < kBlockElems; ++j) {
      codes[j] = static_cast<uint8_t>(NearestCode(id * x[j]));
      const float q = kCodebook[codes[j]];
      const float w = x[j] * x[j];
      sumqx += w * q * x[j];
      sumq2 += w * q * q;
    }
    blk.d = F32ToF16(sumq2 > 0.0f ? sumqx / sumq2 : 0.0f);
    for (uint32_t j = 0; j < kBlockElems / 2; ++j)
      blk.qs[j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
    std::memcpy(bytes + b * sizeof(Block), &blk, sizeof(Block));
  }
}

// With d0 = max/-127 (|d0| = amax/127), u = x/d0 lies in [-127, 127] and its nearest
// entry is within half the widest gap: |x - v*d0| <= 12*|d0|. The refit scale d16 moves
// each value by |v|*|d0 - d16| <= 127*|d0 - d16|. The sign of d16 follows d0 (the
// least-squares fit of x on codes chosen for d0 correlates positively); both are read.
double RoundTripBound(const float* x, const void* block) noexcept {
  Block blk;
  std::memcpy(&blk, block, sizeof(Block));
  float amax = 0.0f, max = 0.0f;
  for (uint32_t j = 0; j < kBlockElems; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) return amax;  // d = 0: every value decodes to 0
  const double d0 = max / static_cast<float>(kCodebook[0]);
  const double d16 = F16ToF32(blk.d);
  return (kWidestGap / 2.0) * std::fabs(d0) * (1.0 + 0x1p-16) + 127.0 * std::fabs(d0 - d16);
}

}  // namespace nibble::quant::iq4_nl
