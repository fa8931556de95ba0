// Checks MatMul (GEMV and tiled paths, 1 and 2 threads) on every compiled Highway target
// against MatMulRef (double accumulation), over shapes that exercise every tail.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"
#include "util/random_vec.h"

namespace nibble::kernels {
namespace {

// C9 dot-product bound |y - y_ref| <= c·K·ε·Σ|x||w|: recursive or blocked f32 summation
// of K products errs by at most K·u·Σ|x||w| (u = 2^-24) and the Ref's final rounding adds
// u·|y|; with ε = FLT_EPSILON = 2u, c = 1 covers both.
constexpr double kTolDotFactor = 1.0;

using test::RandomVec;

void CheckShape(size_t M, size_t N, size_t K, int threads) {
  const std::vector<float> x = RandomVec(M * K, 1 + static_cast<uint32_t>(M * 7 + K));
  const std::vector<float> w = RandomVec(N * K, 2 + static_cast<uint32_t>(N * 13 + K));
  std::vector<float> y(M * N, NAN), ref(M * N);
  MatMul(threads, x.data(), w.data(), y.data(), M, N, K);
  MatMulRef(x.data(), w.data(), ref.data(), M, N, K);
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double abs_sum = 0.0;
      for (size_t k = 0; k < K; ++k) abs_sum += std::fabs(static_cast<double>(x[m * K + k]) * w[n * K + k]);
      const double tol = kTolDotFactor * static_cast<double>(K) * FLT_EPSILON * abs_sum;
      ASSERT_LE(std::fabs(static_cast<double>(y[m * N + n]) - ref[m * N + n]), tol)
          << "M=" << M << " N=" << N << " K=" << K << " threads=" << threads << " at (" << m << ", " << n << ")";
    }
  }
}

class MatMulTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(MatMulTest);

TEST_P(MatMulTest, GemvMatchesRef) {
  for (size_t K : {1, 3, 8, 16, 17, 64, 172, 257})
    for (size_t N : {1, 4, 5, 33, 64, 130}) CheckShape(1, N, K, 1);
}

TEST_P(MatMulTest, TiledMatchesRef) {
  for (size_t M : {2, 3, 7, 33, 40})
    for (size_t K : {5, 16, 64, 100})
      for (size_t N : {1, 6, 37}) CheckShape(M, N, K, 1);
}

TEST_P(MatMulTest, ThreadsMatchRef) {
  // Large enough for the OpenMP split (>= 2^16 multiply-adds, N >= 32), with an N that
  // leaves a partial last block.
  CheckShape(1, 1000, 256, 2);
  CheckShape(9, 301, 96, 2);
}

}  // namespace
}  // namespace nibble::kernels
