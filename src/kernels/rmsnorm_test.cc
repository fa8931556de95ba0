// Checks RmsNorm on every compiled Highway target against RmsNormRef (double), including
// in-place use and widths with every tail length.
#include "kernels/rmsnorm.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"

namespace nibble::kernels {
namespace {

// Relative bound (D + 16)·ε per element: the sum of D squares errs by at most D·u
// relatively (positive terms), the mean, +eps, sqrt and reciprocal add ~4u and the two
// products 2u, so (D/2 + 8)·2u with ε = 2u; the 16 leaves headroom for the Ref rounding.
constexpr double kTolExtraUlps = 16.0;
constexpr float kEps = 1e-5f;  // rms_norm_eps of the llama2.c models

class RmsNormTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(RmsNormTest);

TEST_P(RmsNormTest, MatchesRef) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (size_t D : {1, 7, 8, 16, 31, 64, 100, 4096}) {
    const size_t T = 3;
    std::vector<float> x(T * D), g(D), y(T * D), ref(T * D);
    for (float& v : x) v = dist(rng);
    for (float& v : g) v = dist(rng);
    RmsNorm(x.data(), g.data(), y.data(), T, D, kEps);
    RmsNormRef(x.data(), g.data(), ref.data(), T, D, kEps);
    const double tol_rel = (static_cast<double>(D) + kTolExtraUlps) * FLT_EPSILON;
    for (size_t i = 0; i < T * D; ++i)
      ASSERT_LE(std::fabs(y[i] - ref[i]), tol_rel * std::fabs(ref[i]) + FLT_MIN) << "D=" << D << " i=" << i;
    // In place gives the same bits as out of place.
    std::vector<float> inplace = x;
    RmsNorm(inplace.data(), g.data(), inplace.data(), T, D, kEps);
    EXPECT_EQ(inplace, y) << "D=" << D;
  }
}

TEST_P(RmsNormTest, EpsDominatesForZeroRow) {
  // An all-zero row normalises to zero, not NaN, because eps > 0.
  std::vector<float> x(16, 0.0f), g(16, 1.0f), y(16, NAN);
  RmsNorm(x.data(), g.data(), y.data(), 1, 16, kEps);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace nibble::kernels
