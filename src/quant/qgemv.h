// Quantized GEMV/GEMM over a QTensor (the QuantizedLinear kernels): y = x · Wᵀ for W
// [N, K] quantized, x [M, K] f32. 4-bit formats dequantize in registers (a 16-entry
// table lookup per nibble: vpermps on AVX-512, two lookups and a blend on AVX2), int8
// formats convert codes to f32; accumulation is f32 in both.
// Compute dtype (spec §2.8): kF32 multiplies the f32 table value by x and scales each
// block's partial sum once; kBf16 rounds each dequantized weight f32(lut * absmax) to
// bf16 (RNE) and multiplies it with x rounded to bf16, as bitsandbytes does with
// bnb_4bit_compute_dtype=bfloat16; kF16 the same with fp16 (scalar path).
// The call's QLinearPolicy picks the compute dtype (the weight's recorded one unless
// overridden) and whether 4-bit weights take the int8-activation path (qgemv4_i8.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_features.h"
#include "quant/qtensor.h"

namespace nibble::quant {

// y: [M, N] = x: [M, K] · Wᵀ. M rows run as GEMVs (the weights stream once per row);
// QLinear picks this for small M. Parallel over output rows. No validation.
void QGemv(int num_threads, const float* x, const QTensor& w, float* y, int64_t M,
           const QLinearPolicy& policy = {}) noexcept;
// The scalar oracle: dequantize each weight exactly as DequantizeMatrix (rounded to the
// compute dtype), round x to it, accumulate in f32 in index order.
void QGemvRef(const float* x, const QTensor& w, float* y, int64_t M, const QLinearPolicy& policy = {});

// The quantized kernels' paths under the CPU cap in force, for `nibble --version`.
std::vector<KernelPath> QuantKernelPaths();

namespace detail {
// Rows [n0, n1) of the bf16-compute 4-bit GEMV through vdpbf16ps (qgemv4_avx512bf16.cc).
// Preconditions: kernels::HasAvx512Bf16(), blocksize 64, cols % 64 == 0. xe, xo: [K/2]
// bf16 bits of x's even / odd elements; scale_buf: [4 * K/64] scratch.
void Gemv4RowsBf16Avx512(const QTensor* w, const uint16_t* xe, const uint16_t* xo, float* y, int64_t n0, int64_t n1,
                         float* scale_buf) noexcept;
}  // namespace detail

}  // namespace nibble::quant
