// General f32 GEMM for the backward pass (and anything else that needs a transposed
// operand): C = op(A)·op(B) (+ C). The Linear backward runs as two of them:
//   dX [M, K] = dY [M, N] · W [N, K]                 Gemm(kNo, kNo, dY, W, dX, M, K, N)
//   dW [N, K] += dYᵀ [N, M] · X [M, K]               Gemm(kYes, kNo, dY, X, dW, N, K, M, acc)
// oneDNN runs it where it is enabled (kernels/gemm_onednn.h), as its transpose Cᵀ = op(B)ᵀ·op(A)ᵀ
// when K ≥ 4096 and K ≥ 16·N (faster for the classifier's dX); otherwise (NIBBLE_DISABLE_ONEDNN,
// the scalar cap, or a oneDNN failure) portable loops compute the same sums.
#pragma once

#include <cstddef>

namespace nibble::kernels {

enum class Trans : bool { kNo = false, kYes = true };

// C[M, N] = op(A)·op(B), or C += op(A)·op(B) when `accumulate`. op(A) [M, K]: A stored
// [M, K] (kNo) or [K, M] (kYes); op(B) [K, N]: B stored [K, N] (kNo) or [N, K] (kYes).
// Row-major, no padding; C must not alias A or B. Sums in f32: within K·ε·Σ|a||b| of
// GemmRef. noexcept, no checks.
void Gemm(int num_threads, Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M, size_t N, size_t K,
          bool accumulate = false) noexcept;

// The portable loops alone (what Gemm runs without oneDNN), for tests and benchmarks.
void GemmLoops(int num_threads, Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M, size_t N,
               size_t K, bool accumulate = false) noexcept;

// Scalar oracle: every sum in double.
void GemmRef(Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M, size_t N, size_t K,
             bool accumulate = false) noexcept;

}  // namespace nibble::kernels
