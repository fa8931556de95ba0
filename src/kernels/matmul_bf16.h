// Matrix multiplication y = x · wᵀ with f32 activations and bf16 weights stored [out, in]:
// a Highway variant (bf16 widened to f32, FMA) and an AVX512-BF16 variant (vdpbf16ps in
// matmul_bf16_avx512bf16.cc) chosen once by CPUID, plus the double-accumulating oracle.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nibble::kernels {

// Semantics (both variants, and what PyTorch's bf16 matmul and vdpbf16ps compute):
//   1. every activation is rounded to bf16 with core/float_convert.h F32ToBF16 (RNE,
//      subnormals kept, NaN quieted), once per call;
//   2. each product bf16(x)·w is formed exactly (8 + 8 significant bits fit in f32);
//   3. the K products are summed in f32, in an order that differs between variants, so
//      the variants agree with MatMulBf16Ref within the summation bound
//      K·ε_f32·Σ|bf16(x)·w| but not bit for bit.
// AVX512-BF16 caveat: vdpbf16ps treats bf16 subnormal inputs (|v| < 2^-126) as zero and
// flushes subnormal results (its fixed DAZ/FTZ behaviour, Intel SDM), so a product with a
// subnormal factor (at most 2^-126·max|w| in size) is dropped there and kept elsewhere.
//
// Shapes (row-major, no padding): x [M, K] f32, w [N, K] bf16 bits, y [M, N] f32 (written,
// never read; must not alias x or w). M == 1 is a GEMV (one pass over w). The N outputs
// are split into contiguous blocks over `num_threads` OpenMP threads. The call allocates
// an M·K scratch for the rounded activations (2 or 4 bytes each). noexcept, no checks.
enum class MatMulBf16Variant {
  kAuto,        // oneDNN (activations rounded to bf16) for M >= kOnednnMinRowsBf16, else kHighway (bench/RESULTS.md)
  kHighway,     // Highway dynamic dispatch (AVX3_DL, AVX3, AVX2 or SCALAR)
  kAvx512Bf16,  // vdpbf16ps; precondition HasAvx512Bf16() (NB_CHECK otherwise)
};

void MatMulBf16(int num_threads, const float* x, const uint16_t* w, float* y, size_t M, size_t N, size_t K,
                MatMulBf16Variant variant = MatMulBf16Variant::kAuto) noexcept;

// Oracle: y = Σ_k bf16(x[m,k])·w[n,k] accumulated in double (every product and partial
// sum exact or nearly so), rounded once to f32.
void MatMulBf16Ref(const float* x, const uint16_t* w, float* y, size_t M, size_t N, size_t K) noexcept;

// CPUID leaf 7 subleaf 1 EAX bit 5 (AVX512_BF16) with AVX512F/BW/VL, and XCR0 showing
// the OS saves opmask and zmm state. Probed once per process.
bool HasAvx512Bf16() noexcept;

namespace detail {
// Output columns [n_begin, n_end) of y for all M rows; xb: [M, K] activations already
// rounded to bf16 bits. Defined in matmul_bf16_avx512bf16.cc; call only if HasAvx512Bf16().
void MatMulBf16RangeAvx512Bf16(const uint16_t* xb, const uint16_t* w, float* y, size_t M, size_t N, size_t K,
                               size_t n_begin, size_t n_end) noexcept;
}  // namespace detail

}  // namespace nibble::kernels
