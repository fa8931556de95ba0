// Checks Softmax on every compiled Highway target against SoftmaxRef (double) on random
// rows of many lengths, and its stability for large logits.
#include "kernels/softmax.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"

namespace nibble::kernels {
namespace {

// Relative bound per element (n + 8 + |x_i - max|)·ε: x_i - max rounds with error
// u·|x_i - max|, which exp turns into that relative error; Exp is 1 ulp; the sum of n
// positive terms errs by n·u; the reciprocal and product add 2u (ε = 2u covers all).
constexpr double kTolExtraUlps = 8.0;
// Outputs below this are underflow noise in both (exp(-87) ~ 1.6e-38).
constexpr double kTolAbs = 1e-37;

class SoftmaxTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(SoftmaxTest);

TEST_P(SoftmaxTest, MatchesRef) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 5.0f);
  for (size_t n : {1, 2, 7, 8, 15, 16, 17, 100, 512, 1000}) {
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    std::vector<float> y = x, ref = x;
    Softmax(y.data(), n);
    SoftmaxRef(ref.data(), n);
    const float mx = *std::max_element(x.begin(), x.end());
    for (size_t i = 0; i < n; ++i) {
      const double tol = (static_cast<double>(n) + kTolExtraUlps + std::fabs(x[i] - mx)) * FLT_EPSILON * ref[i];
      ASSERT_LE(std::fabs(y[i] - ref[i]), tol + kTolAbs) << "n=" << n << " i=" << i;
    }
  }
}

TEST_P(SoftmaxTest, LargeLogitsStayFinite) {
  // exp(1000) overflows without the max subtraction.
  std::vector<float> x = {1000.0f, 999.0f, 998.0f, -1000.0f};
  Softmax(x.data(), x.size());
  double sum = 0.0;
  for (float v : x) {
    EXPECT_TRUE(std::isfinite(v));
    sum += v;
  }
  EXPECT_NEAR(sum, 1.0, 8 * FLT_EPSILON);  // four terms: n·ε plus the reciprocal
  EXPECT_GT(x[0], x[1]);
}

}  // namespace
}  // namespace nibble::kernels
