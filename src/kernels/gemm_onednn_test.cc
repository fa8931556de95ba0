// Checks the oneDNN GEMM (gemm_onednn.h) against the double-accumulating oracles MatMulRef
// (f32) and MatMulBf16Ref (bf16 weights, activations rounded to bf16) on odd and large
// shapes at 1 and 2 threads, and MatMul / MatMulBf16 at M >= the oneDNN threshold.
#include "kernels/gemm_onednn.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "core/float_convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "util/random_vec.h"

namespace nibble::kernels {
namespace {

// C9 dot-product bound |y - y_ref| <= c·K·ε·Σ|a||b| (ε = FLT_EPSILON = 2u, u = 2^-24).
// f32: each product rounds once (u·|ab|) and a K-term f32 sum in any order (oneDNN blocks
// K and may add partial sums) adds at most (K-1)·u·Σ|ab|; the Ref's final rounding adds
// u·|y|; total <= (K+1)·u·Σ|ab| <= K·ε·Σ|ab|, so c = 1. bf16: a = bf16(x), b = w and the
// products are exact in f32 (8 + 8 significant bits), so the same c = 1 holds with room.
constexpr double kTolDotFactor = 1.0;

using test::RandomVec;
using test::RandomBf16;

// Compares y with ref element-wise under the bound; `a` holds the activation values that
// the kernel multiplies (x for f32, bf16(x) for bf16 weights), `b` the weights as f32.
void ExpectWithinDotBound(const std::vector<float>& y, const std::vector<float>& ref, const std::vector<float>& a,
                          const std::vector<float>& b, size_t M, size_t N, size_t K, const char* what, int threads) {
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double abs_sum = 0.0;
      for (size_t k = 0; k < K; ++k) abs_sum += std::fabs(static_cast<double>(a[m * K + k]) * b[n * K + k]);
      const double tol = kTolDotFactor * static_cast<double>(K) * FLT_EPSILON * abs_sum;
      ASSERT_LE(std::fabs(static_cast<double>(y[m * N + n]) - ref[m * N + n]), tol)
          << what << " M=" << M << " N=" << N << " K=" << K << " threads=" << threads << " at (" << m << ", " << n
          << ")";
    }
  }
}

void CheckF32(size_t M, size_t N, size_t K, int threads) {
  const std::vector<float> x = RandomVec(M * K, 11 + static_cast<uint32_t>(M * 7 + K));
  const std::vector<float> w = RandomVec(N * K, 12 + static_cast<uint32_t>(N * 13 + K));
  std::vector<float> y(M * N, NAN), ref(M * N), via_matmul(M * N, NAN);
  ASSERT_TRUE(GemmOnednnF32(threads, x.data(), w.data(), y.data(), M, N, K));
  MatMulRef(x.data(), w.data(), ref.data(), M, N, K);
  ExpectWithinDotBound(y, ref, x, w, M, N, K, "GemmOnednnF32", threads);
  // MatMul's dispatch (oneDNN at these M unless NIBBLE_DISABLE_ONEDNN is set).
  MatMul(threads, x.data(), w.data(), via_matmul.data(), M, N, K);
  ExpectWithinDotBound(via_matmul, ref, x, w, M, N, K, "MatMul", threads);
}

void CheckBf16(size_t M, size_t N, size_t K, int threads) {
  const std::vector<float> x = RandomVec(M * K, 21 + static_cast<uint32_t>(M * 7 + K));
  const std::vector<uint16_t> w = RandomBf16(N * K, 22 + static_cast<uint32_t>(N * 13 + K));
  std::vector<float> y(M * N, NAN), ref(M * N), via_matmul(M * N, NAN);
  if (!GemmOnednnBf16(threads, x.data(), w.data(), y.data(), M, N, K)) {
    // Below avx512_core oneDNN 2.6 has no bf16 matmul; the widened f32 path then declines
    // products of fewer than kOnednnMinRowsF32 rows (MatMulBf16 runs Highway there, which
    // matmul_bf16_test.cc covers). Anything else is a failure.
    if (M < kOnednnMinRowsF32 && OnednnBf16Unavailable()) return;
    FAIL() << "GemmOnednnBf16 failed: M=" << M << " N=" << N << " K=" << K;
  }
  MatMulBf16Ref(x.data(), w.data(), ref.data(), M, N, K);
  std::vector<float> xr(M * K), wf(N * K);
  for (size_t i = 0; i < M * K; ++i) xr[i] = BF16ToF32(F32ToBF16(x[i]));
  for (size_t i = 0; i < N * K; ++i) wf[i] = BF16ToF32(w[i]);
  ExpectWithinDotBound(y, ref, xr, wf, M, N, K, "GemmOnednnBf16", threads);
  MatMulBf16(threads, x.data(), w.data(), via_matmul.data(), M, N, K);
  ExpectWithinDotBound(via_matmul, ref, xr, wf, M, N, K, "MatMulBf16", threads);
}

// Shapes: odd sizes that fit no vector or block (3×17×33), the threshold row counts, and a
// prompt-sized product with SmolLM2's K = 576 and an N that leaves partial blocks.
TEST(GemmOnednnTest, F32MatchesRef) {
  if (OnednnDisabled()) GTEST_SKIP() << "oneDNN is off here (scalar CPU cap or NIBBLE_DISABLE_ONEDNN)";
  for (int threads : {1, 2}) {
    CheckF32(3, 17, 33, threads);
    CheckF32(kOnednnMinRowsF32, 37, 100, threads);
    CheckF32(130, 1000, 576, threads);
  }
}

TEST(GemmOnednnTest, Bf16MatchesRef) {
  if (OnednnDisabled()) GTEST_SKIP() << "oneDNN is off here (scalar CPU cap or NIBBLE_DISABLE_ONEDNN)";
  for (int threads : {1, 2}) {
    CheckBf16(3, 17, 33, threads);
    CheckBf16(kOnednnMinRowsBf16, 37, 100, threads);
    CheckBf16(130, 1000, 576, threads);
  }
}

// Activations bf16 cannot hold are rounded (RNE) before the product: with K = 1 and w = 1
// the result is exactly bf16(x). Cases as in matmul_bf16_test.cc (ties to even both ways).
TEST(GemmOnednnTest, Bf16RoundsActivations) {
  if (OnednnDisabled()) GTEST_SKIP() << "oneDNN is off here (scalar CPU cap or NIBBLE_DISABLE_ONEDNN)";
  const std::vector<float> x = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(2.0f + 0x1p-8f), 3.0f};
  const std::vector<float> expect = {1.0f, 1.0f + 0x1p-6f, -2.0f, 3.0f};
  const std::vector<uint16_t> w = {F32ToBF16(1.0f)};
  std::vector<float> y(x.size(), NAN);
  if (!GemmOnednnBf16(1, x.data(), w.data(), y.data(), x.size(), 1, 1)) {
    // 4 rows: below the widened path's 16 where oneDNN has no bf16 matmul (see CheckBf16).
    if (OnednnBf16Unavailable()) GTEST_SKIP() << "oneDNN has no bf16 matmul under this ISA cap and M < 16";
    FAIL() << "GemmOnednnBf16 failed where oneDNN has a bf16 matmul";
  }
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], expect[i]) << "row " << i;
}

// A zero dimension is reported as failure (the dispatcher then runs Highway), not thrown.
TEST(GemmOnednnTest, ZeroDimensionReportsFailure) {
  if (OnednnDisabled()) GTEST_SKIP() << "oneDNN is off here (scalar CPU cap or NIBBLE_DISABLE_ONEDNN)";
  float v = 0.0f;
  EXPECT_FALSE(GemmOnednnF32(1, &v, &v, &v, 0, 1, 1));
  EXPECT_FALSE(GemmOnednnF32(1, &v, &v, &v, 1, 1, 0));
}

// The same shape at 1 and 2 threads uses two cached primitives and gives the same result
// within the bound (checked above); calling again reuses the cache and must not change it.
TEST(GemmOnednnTest, CachedPrimitiveGivesSameResult) {
  if (OnednnDisabled()) GTEST_SKIP() << "oneDNN is off here (scalar CPU cap or NIBBLE_DISABLE_ONEDNN)";
  const size_t M = 8, N = 64, K = 96;
  const std::vector<float> x = RandomVec(M * K, 5), w = RandomVec(N * K, 6);
  std::vector<float> a(M * N), b(M * N);
  ASSERT_TRUE(GemmOnednnF32(2, x.data(), w.data(), a.data(), M, N, K));
  ASSERT_TRUE(GemmOnednnF32(2, x.data(), w.data(), b.data(), M, N, K));
  EXPECT_EQ(a, b);  // same primitive, same inputs: deterministic
}

}  // namespace
}  // namespace nibble::kernels
