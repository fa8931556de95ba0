// Scalar building blocks shared by the blockwise formats' reference (Ref) code: block
// absmax, 4-bit packing, LUT dequantization. Plain loops, one binary32 rounding per
// written operation (the quant library builds with -ffp-contract=off), as spec
// bnb-compatible-quantization.md §2.2 / §2.6 require.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "quant/blockwise.h"

namespace nibble::quant::detail {

// max |x_i| over x[begin, end) (binary32; NaN never reaches here: callers refuse it).
inline float BlockAbsmax(const float* x, int64_t begin, int64_t end) {
  float a = 0.0f;
  for (int64_t i = begin; i < end; ++i) a = std::max(a, std::fabs(x[i]));
  return a;
}

// The 4-bit quantizer of spec §2.2: per block, inv = f32(1/absmax), then each code is
// select(f32(x * inv)); codes packed high nibble first; for odd n the padding nibble
// is select(f32(0 * inv)) of the last block (7 for NF4, 0 for FP4, 0 for an all-zero
// block whose inv is +inf). `select` maps a scaled value (NaN included) to a code.
template <class Select>
void QuantizeLut4Ref(const float* x, int64_t n, int64_t blocksize, uint8_t* packed, float* absmax, Select select) {
  const int64_t nb = NumBlocks(n, blocksize);
  float inv = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t begin = b * blocksize, end = std::min(n, begin + blocksize);
    const float a = BlockAbsmax(x, begin, end);
    absmax[b] = a;
    inv = 1.0f / a;  // +inf for an all-zero block: every s is NaN, every code 0
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t c = select(x[i] * inv);
      if (i & 1) {
        packed[i >> 1] = static_cast<uint8_t>(packed[i >> 1] | c);
      } else {
        packed[i >> 1] = static_cast<uint8_t>(c << 4);
      }
    }
  }
  if (n & 1) packed[n >> 1] = static_cast<uint8_t>(packed[n >> 1] | select(0.0f * inv));
}

// out[i] = f32(lut[code_i] * scale[i / blocksize]) (spec §2.6).
inline void DequantizeLut4Ref(const float* lut, const uint8_t* packed, const float* scales, int64_t n,
                              int64_t blocksize, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = lut[Code4At(packed, i)] * scales[i / blocksize];
}

// Symmetric absmax quantizer with integer codes -qmax..qmax (int4: 7, int8: 127):
// scale = f32(absmax / qmax) is stored; q = rne(f32(x * f32(qmax / absmax))), clamped
// (the two-rounding scaled value can exceed qmax by one ulp); an all-zero block stores
// scale 0 and codes 0. `emit(i, q)` stores code q of element i.
template <class Emit>
void QuantizeSymmetricRef(const float* x, int64_t n, int64_t blocksize, int qmax, float* scales, Emit emit) {
  const float fq = static_cast<float>(qmax);
  for (int64_t b = 0; b < NumBlocks(n, blocksize); ++b) {
    const int64_t begin = b * blocksize, end = std::min(n, begin + blocksize);
    const float a = BlockAbsmax(x, begin, end);
    scales[b] = a / fq;
    const float inv = a > 0.0f ? fq / a : 0.0f;
    for (int64_t i = begin; i < end; ++i) {
      const float q = std::nearbyint(x[i] * inv);
      emit(i, static_cast<int>(std::clamp(q, -fq, fq)));
    }
  }
}

}  // namespace nibble::quant::detail
