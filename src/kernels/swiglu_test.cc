// Checks SwiGlu on every compiled Highway target against SwiGluRef (double), including
// very negative gates (the exp clamp) and in-place use.
#include "kernels/swiglu.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"

namespace nibble::kernels {
namespace {

// Relative bound 8ε: Exp errs by 1 ulp, 1 + e, the division and the product by u each
// (about 5u = 2.5ε); 8ε leaves headroom. The clamp at exp(88) adds at most
// |gate·up|·2^-126 absolute (sigmoid(-88) < 2^-126).
constexpr double kTolRel = 8.0 * FLT_EPSILON;
constexpr double kTolClampFactor = 0x1p-126;

class SwiGluTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(SwiGluTest);

TEST_P(SwiGluTest, MatchesRef) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  for (size_t n : {1, 7, 16, 33, 172, 1000}) {
    std::vector<float> g(n), u(n), y(n), ref(n);
    for (float& v : g) v = dist(rng);
    for (float& v : u) v = dist(rng);
    if (n > 4) g[0] = -100.0f, g[1] = 100.0f, g[2] = -88.5f, g[3] = 0.0f;
    SwiGlu(g.data(), u.data(), y.data(), n);
    SwiGluRef(g.data(), u.data(), ref.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const double tol = kTolRel * std::fabs(ref[i]) + kTolClampFactor * std::fabs(static_cast<double>(g[i]) * u[i]);
      ASSERT_LE(std::fabs(y[i] - ref[i]), tol) << "n=" << n << " i=" << i << " gate=" << g[i];
      ASSERT_TRUE(std::isfinite(y[i]));
    }
    std::vector<float> inplace = g;
    SwiGlu(inplace.data(), u.data(), inplace.data(), n);
    EXPECT_EQ(inplace, y);
  }
}

}  // namespace
}  // namespace nibble::kernels
