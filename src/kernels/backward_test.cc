// Backward kernels (RMSNorm, SwiGLU, RoPE, fused cross-entropy), each checked twice:
//  1. the double Ref against central differences of an independent double forward
//     written here (J = Σ w·f(x) with random w, so the upstream gradient is w);
//  2. the fast path on every compiled Highway target against the Ref, with a bound
//     derived per kernel (stated at each constant).
// Central differences in double with h = 1e-5·max(1,|x|): truncation ~h²·f''' ≈ 1e-10 and
// cancellation ~1e-16/h ≈ 1e-11, far below the Ref's f32 output rounding (6e-8 relative),
// so the FD check holds to 1e-6 of the largest gradient.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"
#include "kernels/cross_entropy.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace nibble::kernels {
namespace {

constexpr double kFdTol = 1e-6;  // of the largest |gradient| (see the file comment)

std::vector<float> Normal(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// d J / d x_i by central differences, J a double function of the (double) inputs.
std::vector<double> CentralDiff(const std::vector<float>& x, const std::function<double(const std::vector<double>&)>& J) {
  std::vector<double> xd(x.begin(), x.end()), g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double h = 1e-5 * std::max(1.0, std::fabs(xd[i]));
    const double keep = xd[i];
    xd[i] = keep + h;
    const double jp = J(xd);
    xd[i] = keep - h;
    const double jm = J(xd);
    xd[i] = keep;
    g[i] = (jp - jm) / (2 * h);
  }
  return g;
}

void ExpectNear(const std::vector<float>& analytic, const std::vector<double>& numeric, const char* what) {
  double scale = 0;
  for (double v : numeric) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < numeric.size(); ++i)
    ASSERT_LE(std::fabs(analytic[i] - numeric[i]), kFdTol * scale + 1e-12) << what << " i=" << i;
}

// ---- RMSNorm ------------------------------------------------------------------------

double RmsNormJ(const std::vector<double>& x, const std::vector<double>& g, const std::vector<float>& w, size_t T,
                size_t D, double eps) {
  double j = 0;
  for (size_t t = 0; t < T; ++t) {
    double ss = 0;
    for (size_t i = 0; i < D; ++i) ss += x[t * D + i] * x[t * D + i];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
    for (size_t i = 0; i < D; ++i) j += w[t * D + i] * g[i] * x[t * D + i] * r;
  }
  return j;
}

TEST(BackwardFd, RmsNormRefMatchesCentralDifferences) {
  const size_t T = 3, D = 10;
  const float eps = 1e-5f;
  const auto x = Normal(T * D, 1), g = Normal(D, 2), w = Normal(T * D, 3);
  std::vector<float> dx(T * D), dg(D, 0.0f);
  RmsNormBackwardRef(x.data(), g.data(), w.data(), dx.data(), dg.data(), T, D, eps);
  const std::vector<double> gd(g.begin(), g.end()), xd(x.begin(), x.end());
  ExpectNear(dx, CentralDiff(x, [&](const std::vector<double>& xv) { return RmsNormJ(xv, gd, w, T, D, eps); }), "dx");
  ExpectNear(dg, CentralDiff(g, [&](const std::vector<double>& gv) { return RmsNormJ(xd, gv, w, T, D, eps); }), "dg");
}

class BackwardTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(BackwardTest);

// dx_j = r·g_j·dy_j − c·x_j may cancel, so the bound is relative to the two terms'
// magnitudes: the sums over D (Σx², Σ dy·g·x) err by ≤ D·u relatively, r and c add ~6u,
// the products 3u: (D + 16)·ε covers it. dg sums T rows of such terms: (D + T + 16)·ε of
// Σ_t |dy·x·r|.
TEST_P(BackwardTest, RmsNormMatchesRef) {
  for (size_t D : {1, 7, 16, 31, 100, 2048}) {
    const size_t T = 4;
    const float eps = 1e-5f;
    const auto x = Normal(T * D, 10 + static_cast<uint32_t>(D), 2.0f), g = Normal(D, 20), dy = Normal(T * D, 30);
    std::vector<float> dx(T * D), dg(D, 0.5f), rdx(T * D), rdg(D, 0.5f);
    RmsNormBackward(x.data(), g.data(), dy.data(), dx.data(), dg.data(), T, D, eps);
    RmsNormBackwardRef(x.data(), g.data(), dy.data(), rdx.data(), rdg.data(), T, D, eps);
    const double tol = (static_cast<double>(D) + 16) * FLT_EPSILON;
    std::vector<double> dg_mag(D, 0.5);
    for (size_t t = 0; t < T; ++t) {
      double ss = 0, s = 0;
      for (size_t i = 0; i < D; ++i) ss += static_cast<double>(x[t * D + i]) * x[t * D + i];
      const double r = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
      for (size_t i = 0; i < D; ++i) s += std::fabs(static_cast<double>(dy[t * D + i]) * g[i] * x[t * D + i]);
      for (size_t i = 0; i < D; ++i) {
        const size_t k = t * D + i;
        const double mag = std::fabs(r * g[i] * dy[k]) + r * r * r / static_cast<double>(D) * s * std::fabs(x[k]);
        ASSERT_LE(std::fabs(dx[k] - rdx[k]), tol * mag + FLT_MIN) << "D=" << D << " k=" << k;
        dg_mag[i] += std::fabs(static_cast<double>(dy[k]) * x[k] * r);
      }
    }
    for (size_t i = 0; i < D; ++i)
      ASSERT_LE(std::fabs(dg[i] - rdg[i]), (static_cast<double>(D + T) + 16) * FLT_EPSILON * dg_mag[i]) << "D=" << D;
    // dx may equal dy.
    std::vector<float> inplace = dy, dg2(D, 0.5f);
    RmsNormBackward(x.data(), g.data(), inplace.data(), inplace.data(), dg2.data(), T, D, eps);
    EXPECT_EQ(inplace, dx) << "D=" << D;
    EXPECT_EQ(dg2, dg) << "D=" << D;
  }
}

// ---- SwiGLU -------------------------------------------------------------------------

double SwiGluJ(const std::vector<double>& g, const std::vector<double>& u, const std::vector<float>& w) {
  double j = 0;
  for (size_t i = 0; i < g.size(); ++i) j += w[i] * g[i] / (1.0 + std::exp(-g[i])) * u[i];
  return j;
}

TEST(BackwardFd, SwiGluRefMatchesCentralDifferences) {
  const size_t n = 40;
  const auto g = Normal(n, 4, 3.0f), u = Normal(n, 5), w = Normal(n, 6);
  std::vector<float> dg(n), du(n);
  SwiGluBackwardRef(g.data(), u.data(), w.data(), dg.data(), du.data(), n);
  const std::vector<double> gd(g.begin(), g.end()), ud(u.begin(), u.end());
  ExpectNear(dg, CentralDiff(g, [&](const std::vector<double>& gv) { return SwiGluJ(gv, ud, w); }), "dgate");
  ExpectNear(du, CentralDiff(u, [&](const std::vector<double>& uv) { return SwiGluJ(gd, uv, w); }), "dup");
}

// Exp errs by 1 ulp; sigmoid (1 + e, division) ~3u; dup's two products 2u; dgate's
// 1 + g·(1 − s) may cancel (near g = −1.28), so its bound is relative to |o·u·s|·(1 +
// |g|·(1 − s)): 16ε in all. The exp clamp at 88 changes s by < 2^-126 absolutely, times
// (1 + |g|)·|o·u|.
TEST_P(BackwardTest, SwiGluMatchesRef) {
  for (size_t n : {1, 5, 16, 33, 1000}) {
    auto g = Normal(n, 7 + static_cast<uint32_t>(n), 4.0f);
    const auto u = Normal(n, 8), o = Normal(n, 9);
    if (n > 4) g[0] = -100.0f, g[1] = 100.0f, g[2] = -1.2785f, g[3] = 0.0f;
    std::vector<float> dg(n), du(n), rdg(n), rdu(n);
    SwiGluBackward(g.data(), u.data(), o.data(), dg.data(), du.data(), n);
    SwiGluBackwardRef(g.data(), u.data(), o.data(), rdg.data(), rdu.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const double gi = g[i], s = 1.0 / (1.0 + std::exp(-gi));
      const double ou = std::fabs(static_cast<double>(o[i]) * u[i]);
      const double clamp = 0x1p-126 * (1 + std::fabs(gi));
      ASSERT_LE(std::fabs(dg[i] - rdg[i]), 16 * FLT_EPSILON * ou * s * (1 + std::fabs(gi) * (1 - s)) + clamp * ou)
          << "n=" << n << " g=" << gi;
      ASSERT_LE(std::fabs(du[i] - rdu[i]), 16 * FLT_EPSILON * std::fabs(o[i] * gi * s) + clamp * std::fabs(o[i]))
          << "n=" << n << " g=" << gi;
      ASSERT_TRUE(std::isfinite(dg[i]) && std::isfinite(du[i]));
    }
    // Outputs may equal inputs.
    std::vector<float> a = g, b = u;
    SwiGluBackward(a.data(), b.data(), o.data(), a.data(), b.data(), n);
    EXPECT_EQ(a, dg);
    EXPECT_EQ(b, du);
  }
}

// ---- RoPE ---------------------------------------------------------------------------

TEST(BackwardFd, RopeRefMatchesCentralDifferencesBothLayouts) {
  const size_t H = 2, Dh = 8;
  const float theta = 10000.0f;
  for (RopeLayout layout : {RopeLayout::kAdjacentPairs, RopeLayout::kRotateHalf}) {
    for (int64_t pos : {0, 3, 100}) {
      const auto x = Normal(H * Dh, 11), w = Normal(H * Dh, 12);
      std::vector<float> dx = w;
      RopeBackwardRef(layout, dx.data(), H, Dh, pos, theta);
      // The forward in double, written out (pairs as kernels/rope.h defines them).
      auto J = [&](const std::vector<double>& xv) {
        double j = 0;
        for (size_t h = 0; h < H; ++h)
          for (size_t k = 0; k < Dh / 2; ++k) {
            const size_t a = layout == RopeLayout::kAdjacentPairs ? 2 * k : k;
            const size_t b = layout == RopeLayout::kAdjacentPairs ? 2 * k + 1 : k + Dh / 2;
            const double ang = static_cast<double>(pos) * std::pow(static_cast<double>(theta), -2.0 * k / Dh);
            const double xa = xv[h * Dh + a], xb = xv[h * Dh + b];
            j += w[h * Dh + a] * (xa * std::cos(ang) - xb * std::sin(ang)) +
                 w[h * Dh + b] * (xb * std::cos(ang) + xa * std::sin(ang));
          }
        return j;
      };
      ExpectNear(dx, CentralDiff(x, J), "rope dx");
    }
  }
}

// The f32 angle tables err by ~4·pos·ε radians (as in rope_test.cc), plus 8ε for the
// products: (4·pos + 8)·ε·(|ga| + |gb|) per pair.
TEST(RopeBackward, MatchesRef) {
  const float theta = 10000.0f;
  for (RopeLayout layout : {RopeLayout::kAdjacentPairs, RopeLayout::kRotateHalf}) {
    for (size_t Dh : {2, 16, 64}) {
      for (int64_t pos : {0, 1, 77, 2047}) {
        const size_t H = 3;
        const auto g = Normal(H * Dh, static_cast<uint32_t>(Dh + pos));
        std::vector<float> dx = g, ref = g, c(Dh / 2), s(Dh / 2);
        RopeAngles(pos, theta, Dh, c.data(), s.data());
        RopeBackward(layout, dx.data(), H, Dh, c.data(), s.data());
        RopeBackwardRef(layout, ref.data(), H, Dh, pos, theta);
        for (size_t h = 0; h < H; ++h)
          for (size_t k = 0; k < Dh / 2; ++k) {
            const size_t a = layout == RopeLayout::kAdjacentPairs ? 2 * k : k;
            const size_t b = layout == RopeLayout::kAdjacentPairs ? 2 * k + 1 : k + Dh / 2;
            const double tol = (4.0 * static_cast<double>(pos) + 8) * FLT_EPSILON *
                               (std::fabs(g[h * Dh + a]) + std::fabs(g[h * Dh + b]));
            ASSERT_LE(std::fabs(dx[h * Dh + a] - ref[h * Dh + a]), tol);
            ASSERT_LE(std::fabs(dx[h * Dh + b] - ref[h * Dh + b]), tol);
          }
        // Forward then backward is the identity (a rotation and its transpose).
        std::vector<float> round = g;
        Rope(layout, round.data(), H, Dh, c.data(), s.data());
        RopeBackward(layout, round.data(), H, Dh, c.data(), s.data());
        for (size_t i = 0; i < round.size(); ++i) ASSERT_NEAR(round[i], g[i], 8 * FLT_EPSILON * (1 + std::fabs(g[i])));
      }
    }
  }
}

// ---- cross-entropy ------------------------------------------------------------------

TEST(BackwardFd, CrossEntropyRefMatchesCentralDifferences) {
  const size_t T = 4, V = 9;
  const int32_t ignore = -100;
  const auto logits = Normal(T * V, 13, 3.0f);
  const std::vector<int32_t> targets = {2, ignore, 8, 0};
  const float scale = 1.0f / 3;  // mean over the 3 counted rows
  std::vector<float> dl(T * V);
  size_t counted = 0;
  CrossEntropyRef(logits.data(), targets.data(), dl.data(), T, V, ignore, scale, &counted);
  EXPECT_EQ(counted, 3u);
  auto J = [&](const std::vector<double>& x) {
    double j = 0;
    for (size_t t = 0; t < T; ++t) {
      if (targets[t] == ignore) continue;
      double sum = 0;
      for (size_t v = 0; v < V; ++v) sum += std::exp(x[t * V + v]);
      j += std::log(sum) - x[t * V + static_cast<size_t>(targets[t])];
    }
    return j * scale;
  };
  ExpectNear(dl, CentralDiff(logits, J), "dlogits");
  // The loss itself against the written-out formula.
  const std::vector<double> xd(logits.begin(), logits.end());
  EXPECT_NEAR(CrossEntropyRef(logits.data(), targets.data(), nullptr, T, V, ignore, 1.0f, &counted) * scale, J(xd),
              1e-12);
}

// Per row the sum of V exps in f32 lanes errs by ≤ (V/lanes + 2)·u relatively, so
// log(sum) by as much absolutely: (V + 16)·ε bounds a row's loss and each p's relative
// error; dlogits (p − [target])·scale then errs by (V + 16)·ε·scale·(p + [target]).
TEST_P(BackwardTest, CrossEntropyMatchesRef) {
  const int32_t ignore = -100;
  for (size_t V : {1, 7, 32, 100, 4099}) {
    const size_t T = 5;
    auto logits = Normal(T * V, 14 + static_cast<uint32_t>(V), 4.0f);
    if (V > 10) logits[3] = 80.0f, logits[V + 5] = -80.0f;  // a dominant and a vanishing logit
    std::vector<int32_t> targets(T);
    for (size_t t = 0; t < T; ++t) targets[t] = static_cast<int32_t>((t * 7 + 3) % V);
    targets[2] = ignore;
    for (int threads : {1, 2, 3}) {
      std::vector<float> dl(T * V, 9.0f), rdl(T * V, 9.0f);
      size_t n = 0, rn = 0;
      const float scale = 0.25f;
      const double loss = CrossEntropy(threads, logits.data(), targets.data(), dl.data(), T, V, ignore, scale, &n);
      const double ref = CrossEntropyRef(logits.data(), targets.data(), rdl.data(), T, V, ignore, scale, &rn);
      ASSERT_EQ(n, 4u);
      ASSERT_EQ(rn, 4u);
      const double tol = (static_cast<double>(V) + 16) * FLT_EPSILON;
      EXPECT_NEAR(loss, ref, tol * static_cast<double>(n) * (1 + std::fabs(ref))) << "V=" << V;
      for (size_t t = 0; t < T; ++t)
        for (size_t v = 0; v < V; ++v) {
          const size_t k = t * V + v;
          if (targets[t] == ignore) {
            ASSERT_EQ(dl[k], 0.0f);
            continue;
          }
          const double onehot = static_cast<int32_t>(v) == targets[t] ? 1.0 : 0.0;
          const double p = rdl[k] / scale + onehot;
          ASSERT_LE(std::fabs(dl[k] - rdl[k]), tol * scale * (std::fabs(p) + onehot) + FLT_MIN)
              << "V=" << V << " t=" << t << " v=" << v;
        }
      // In place (dlogits = logits), and the loss alone.
      std::vector<float> inplace = logits;
      size_t n2 = 0;
      EXPECT_EQ(CrossEntropy(threads, inplace.data(), targets.data(), inplace.data(), T, V, ignore, scale, &n2), loss);
      EXPECT_EQ(inplace, dl);
      EXPECT_EQ(CrossEntropy(threads, logits.data(), targets.data(), nullptr, T, V, ignore, scale, &n2), loss);
    }
  }
}

}  // namespace
}  // namespace nibble::kernels
