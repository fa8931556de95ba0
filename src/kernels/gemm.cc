// Gemm: oneDNN first, then portable loops arranged so the innermost loop runs over
// contiguous memory in each of the four layouts.
#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/gemm_onednn.h"

namespace nibble::kernels {

void GemmLoops(int num_threads, Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M, size_t N,
               size_t K, bool accumulate) noexcept {
  const bool tra = ta == Trans::kYes, trb = tb == Trans::kYes;
  const int threads = num_threads < 1 ? 1 : num_threads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && M * N * K >= (size_t{1} << 16))
  for (long mi = 0; mi < static_cast<long>(M); ++mi) {
    const size_t m = static_cast<size_t>(mi);
    float* crow = c + m * N;
    if (!accumulate) std::fill(crow, crow + N, 0.0f);
    if (!trb) {
      // c_m += Σ_k a_mk · b_k (rows of B contiguous).
      for (size_t k = 0; k < K; ++k) {
        const float amk = tra ? a[k * M + m] : a[m * K + k];
        const float* brow = b + k * N;
        for (size_t n = 0; n < N; ++n) crow[n] += amk * brow[n];
      }
    } else {
      // c_mn += a_m · b_n (B stored [N, K]: rows of B are the columns of op(B)).
      for (size_t n = 0; n < N; ++n) {
        const float* brow = b + n * K;
        float s = 0.0f;
        if (!tra) {
          const float* arow = a + m * K;
          for (size_t k = 0; k < K; ++k) s += arow[k] * brow[k];
        } else {
          for (size_t k = 0; k < K; ++k) s += a[k * M + m] * brow[k];
        }
        crow[n] += s;
      }
    }
  }
}

namespace {

// A long reduction into a narrow result (K ≥ 4096 and K ≥ 16·N: the classifier's input
// gradient dX = dY·W reduces over the vocabulary) runs faster in oneDNN as its transpose
// Cᵀ = op(B)ᵀ·op(A)ᵀ, which is then transposed into C (bench/RESULTS.md, "Backward GEMMs":
// 0.64 against 0.50 of the FMA peak on SmolLM2's classifier). The same products and sums,
// in oneDNN's order for that layout. False when the shape does not qualify or oneDNN
// declines (the caller goes on as usual).
bool GemmAsTranspose(int num_threads, Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M,
                     size_t N, size_t K, bool accumulate) noexcept {
  if (K < 4096 || K < 16 * N || OnednnDisabled()) return false;
  try {
    std::vector<float> t(N * M);  // Cᵀ [N, M]
    // op(B)ᵀ is b as stored when tb (b: [N, K]), else bᵀ; op(A)ᵀ likewise.
    if (!GemmOnednnF32General(num_threads, tb == Trans::kNo, ta == Trans::kNo, b, a, t.data(), N, M, K, false))
      return false;
    const int threads = num_threads < 1 ? 1 : num_threads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && M * N >= (size_t{1} << 15))
    for (long mi = 0; mi < static_cast<long>(M); ++mi) {
      const size_t m = static_cast<size_t>(mi);
      float* crow = c + m * N;
      if (accumulate) {
        for (size_t n = 0; n < N; ++n) crow[n] += t[n * M + m];
      } else {
        for (size_t n = 0; n < N; ++n) crow[n] = t[n * M + m];
      }
    }
    return true;
  } catch (...) {  // std::bad_alloc: the plain path needs no scratch
    return false;
  }
}

}  // namespace

void Gemm(int num_threads, Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M, size_t N, size_t K,
          bool accumulate) noexcept {
  if (GemmAsTranspose(num_threads, ta, tb, a, b, c, M, N, K, accumulate)) return;
  if (GemmOnednnF32General(num_threads, ta == Trans::kYes, tb == Trans::kYes, a, b, c, M, N, K, accumulate)) return;
  GemmLoops(num_threads, ta, tb, a, b, c, M, N, K, accumulate);
}

void GemmRef(Trans ta, Trans tb, const float* a, const float* b, float* c, size_t M, size_t N, size_t K,
             bool accumulate) noexcept {
  for (size_t m = 0; m < M; ++m)
    for (size_t n = 0; n < N; ++n) {
      double s = accumulate ? static_cast<double>(c[m * N + n]) : 0.0;
      for (size_t k = 0; k < K; ++k) {
        const double x = ta == Trans::kYes ? a[k * M + m] : a[m * K + k];
        const double y = tb == Trans::kYes ? b[n * K + k] : b[k * N + n];
        s += x * y;
      }
      c[m * N + n] = static_cast<float>(s);
    }
}

}  // namespace nibble::kernels
