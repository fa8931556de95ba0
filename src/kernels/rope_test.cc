// Checks Rope (f32 tables) against RopeRef (double) for both layouts, that the two
// layouts are the same rotation up to the §4.4 row permutation, and norm preservation.
#include "kernels/rope.h"
#include "util/random_vec.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

namespace nibble::kernels {
namespace {

// Absolute bound (|a| + |b|)·(4·pos + 8)·ε per rotated pair: inv_freq (powf, reciprocal)
// and pos·inv_freq err by ~3u relatively, i.e. ~3u·pos radians in the angle (<= 4·pos·ε
// with margin); cos/sin and the two products and sum add a few u (8ε covers them).
constexpr double kTolPosFactor = 4.0;
constexpr double kTolExtraUlps = 8.0;
constexpr float kTheta = 10000.0f;

using test::RandomVec;

TEST(RopeTest, MatchesRefBothLayouts) {
  for (RopeLayout layout : {RopeLayout::kAdjacentPairs, RopeLayout::kRotateHalf}) {
    for (size_t Dh : {2, 8, 16, 64, 128}) {
      for (int64_t pos : {0, 1, 5, 127, 511, 4095}) {
        const size_t H = 3;
        const std::vector<float> x = RandomVec(H * Dh, static_cast<uint32_t>(Dh * 1000 + pos));
        std::vector<float> y = x, ref = x, cos(Dh / 2), sin(Dh / 2);
        RopeAngles(pos, kTheta, Dh, cos.data(), sin.data());
        Rope(layout, y.data(), H, Dh, cos.data(), sin.data());
        RopeRef(layout, ref.data(), H, Dh, pos, kTheta);
        const double scale = (kTolPosFactor * static_cast<double>(pos) + kTolExtraUlps) * FLT_EPSILON;
        for (size_t h = 0; h < H; ++h) {
          for (size_t j = 0; j < Dh / 2; ++j) {
            const size_t a = layout == RopeLayout::kAdjacentPairs ? 2 * j : j;
            const size_t b = layout == RopeLayout::kAdjacentPairs ? 2 * j + 1 : j + Dh / 2;
            const double tol = scale * (std::fabs(x[h * Dh + a]) + std::fabs(x[h * Dh + b]));
            ASSERT_LE(std::fabs(y[h * Dh + a] - ref[h * Dh + a]), tol) << "Dh=" << Dh << " pos=" << pos;
            ASSERT_LE(std::fabs(y[h * Dh + b] - ref[h * Dh + b]), tol) << "Dh=" << Dh << " pos=" << pos;
          }
        }
      }
    }
  }
}

TEST(RopeTest, LayoutsAgreeUnderPermutation) {
  // Spec §4.4: interleaved row 2j + p holds rotate-half row p·Dh/2 + j. Rotating the
  // permuted vector with adjacent pairs equals permuting the rotate-half result, exactly
  // (same f32 operations on the same values).
  const size_t Dh = 16, H = 2;
  const std::vector<float> half = RandomVec(H * Dh, 99);
  std::vector<float> inter(H * Dh);
  for (size_t h = 0; h < H; ++h)
    for (size_t j = 0; j < Dh / 2; ++j)
      for (size_t p = 0; p < 2; ++p) inter[h * Dh + 2 * j + p] = half[h * Dh + p * Dh / 2 + j];
  std::vector<float> cos(Dh / 2), sin(Dh / 2);
  RopeAngles(37, kTheta, Dh, cos.data(), sin.data());
  std::vector<float> rh = half, ri = inter;
  Rope(RopeLayout::kRotateHalf, rh.data(), H, Dh, cos.data(), sin.data());
  Rope(RopeLayout::kAdjacentPairs, ri.data(), H, Dh, cos.data(), sin.data());
  for (size_t h = 0; h < H; ++h)
    for (size_t j = 0; j < Dh / 2; ++j)
      for (size_t p = 0; p < 2; ++p) EXPECT_EQ(ri[h * Dh + 2 * j + p], rh[h * Dh + p * Dh / 2 + j]);
}

TEST(RopeTest, PositionZeroIsIdentityAndNormsArePreserved) {
  const size_t Dh = 8;
  const std::vector<float> x = RandomVec(Dh, 3);
  std::vector<float> cos(Dh / 2), sin(Dh / 2), y = x;
  RopeAngles(0, kTheta, Dh, cos.data(), sin.data());
  Rope(RopeLayout::kAdjacentPairs, y.data(), 1, Dh, cos.data(), sin.data());
  EXPECT_EQ(y, x);
  RopeAngles(300, kTheta, Dh, cos.data(), sin.data());
  Rope(RopeLayout::kAdjacentPairs, y.data(), 1, Dh, cos.data(), sin.data());
  double n0 = 0, n1 = 0;
  for (size_t i = 0; i < Dh; ++i) n0 += x[i] * x[i], n1 += y[i] * y[i];
  EXPECT_NEAR(n1, n0, 8 * FLT_EPSILON * n0);  // a rotation: each pair's norm to a few ulps
}

}  // namespace
}  // namespace nibble::kernels
