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
#include <thread>
#include <vector>

#include "hwy/tests/hwy_gtest.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/gemm.h"
#include "kernels/gemm_onednn.h"
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
    // A dominant logit whose exp overflows f32 without the max subtracted, and a vanishing one.
    if (V > 10) logits[3] = 100.0f, logits[V + 5] = -100.0f;
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

// ---- causal GQA attention -------------------------------------------------------------

// The forward in double, written out: J = Σ w·o over the T new rows.
double AttentionJ(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                  const std::vector<float>& w, size_t T, size_t start_pos, size_t H, size_t KV, size_t Dh) {
  const size_t group = H / KV, kvs = KV * Dh;
  double j = 0;
  for (size_t t = 0; t < T; ++t)
    for (size_t i = 0; i < H; ++i) {
      const size_t off = (i / group) * Dh, n = start_pos + t + 1;
      std::vector<double> sc(n);
      double mx = -INFINITY, sum = 0;
      for (size_t s = 0; s < n; ++s) {
        double dot = 0;
        for (size_t d = 0; d < Dh; ++d) dot += q[t * H * Dh + i * Dh + d] * k[s * kvs + off + d];
        sc[s] = dot / std::sqrt(static_cast<double>(Dh));
        mx = std::max(mx, sc[s]);
      }
      for (double& x : sc) sum += (x = std::exp(x - mx));
      for (size_t d = 0; d < Dh; ++d) {
        double o = 0;
        for (size_t s = 0; s < n; ++s) o += sc[s] / sum * v[s * kvs + off + d];
        j += w[t * H * Dh + i * Dh + d] * o;
      }
    }
  return j;
}

TEST(BackwardFd, AttentionRefMatchesCentralDifferencesGqaWithCachedRows) {
  const size_t T = 3, start_pos = 2, H = 4, KV = 2, Dh = 4, P = start_pos + T;
  const auto q = Normal(T * H * Dh, 21), k = Normal(P * KV * Dh, 22), v = Normal(P * KV * Dh, 23);
  const auto w = Normal(T * H * Dh, 24);
  std::vector<float> dq(q.size()), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  CausalAttentionBackwardRef(q.data(), k.data(), v.data(), w.data(), dq.data(), dk.data(), dv.data(), T, start_pos, H,
                             KV, Dh);
  const std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
  ExpectNear(dq, CentralDiff(q, [&](const std::vector<double>& x) { return AttentionJ(x, kd, vd, w, T, start_pos, H, KV, Dh); }), "dq");
  ExpectNear(dk, CentralDiff(k, [&](const std::vector<double>& x) { return AttentionJ(qd, x, vd, w, T, start_pos, H, KV, Dh); }), "dk");
  ExpectNear(dv, CentralDiff(v, [&](const std::vector<double>& x) { return AttentionJ(qd, kd, x, w, T, start_pos, H, KV, Dh); }), "dv");
}

// Every gradient is a sum over at most P positions of products whose factors (the
// probabilities, do·v_s − D) carry f32 errors of a few Dh-term dot products: the fast
// path's error is bounded by (2·Dh + P + 32)·ε times the same sums taken over absolute
// values (mag_* below, computed here in double from the inputs).
TEST_P(BackwardTest, AttentionMatchesRef) {
  struct Shape {
    size_t T, start_pos, H, KV, Dh;
  };
  for (const Shape sh : {Shape{1, 0, 1, 1, 8}, Shape{5, 0, 4, 2, 16}, Shape{7, 3, 6, 3, 12}, Shape{33, 0, 8, 8, 64},
                         Shape{9, 4, 4, 1, 5}, Shape{40, 0, 8, 2, 32}}) {  // the last: threaded GQA
    const size_t P = sh.start_pos + sh.T, kvs = sh.KV * sh.Dh, group = sh.H / sh.KV;
    const uint32_t seed = static_cast<uint32_t>(sh.T * 100 + sh.Dh);
    const auto q = Normal(sh.T * sh.H * sh.Dh, seed), k = Normal(P * kvs, seed + 1), v = Normal(P * kvs, seed + 2);
    const auto dout = Normal(sh.T * sh.H * sh.Dh, seed + 3);
    for (int threads : {1, 2, 3}) {
      std::vector<float> out(q.size()), scratch(static_cast<size_t>(threads) * P);
      CausalAttention(threads, q.data(), k.data(), v.data(), out.data(), sh.T, sh.start_pos, sh.H, sh.KV, sh.Dh,
                      scratch.data());
      std::vector<float> dq(q.size()), dk(k.size(), 0.25f), dv(v.size(), 0.25f);
      std::vector<float> rdq(q.size()), rdk(k.size(), 0.25f), rdv(v.size(), 0.25f);
      std::vector<float> bscratch(CausalAttentionBackwardScratch(sh.T, sh.start_pos, sh.H, sh.KV, sh.Dh), -1.0f);
      CausalAttentionBackward(threads, q.data(), k.data(), v.data(), out.data(), dout.data(), dq.data(), dk.data(),
                              dv.data(), sh.T, sh.start_pos, sh.H, sh.KV, sh.Dh, bscratch.data());
      CausalAttentionBackwardRef(q.data(), k.data(), v.data(), dout.data(), rdq.data(), rdk.data(), rdv.data(), sh.T,
                                 sh.start_pos, sh.H, sh.KV, sh.Dh);
      // Magnitudes: the Ref's sums with every term made positive.
      std::vector<double> mq(q.size(), 0), mk(k.size(), 0.25), mv(v.size(), 0.25);
      const double scale = 1.0 / std::sqrt(static_cast<double>(sh.Dh));
      for (size_t t = 0; t < sh.T; ++t)
        for (size_t i = 0; i < sh.H; ++i) {
          const size_t off = (i / group) * sh.Dh, n = sh.start_pos + t + 1, row = t * sh.H * sh.Dh + i * sh.Dh;
          std::vector<double> p(n);
          double mx = -INFINITY, sum = 0;
          for (size_t s = 0; s < n; ++s) {
            double dot = 0;
            for (size_t d = 0; d < sh.Dh; ++d) dot += static_cast<double>(q[row + d]) * k[s * kvs + off + d];
            mx = std::max(mx, p[s] = dot * scale);
          }
          for (double& x : p) sum += (x = std::exp(x - mx));
          for (double& x : p) x /= sum;
          double dabs = 0;
          std::vector<double> dpabs(n, 0);
          for (size_t s = 0; s < n; ++s) {
            for (size_t d = 0; d < sh.Dh; ++d) dpabs[s] += std::fabs(dout[row + d] * v[s * kvs + off + d]);
            dabs += p[s] * dpabs[s];
          }
          for (size_t s = 0; s < n; ++s) {
            const double ds = p[s] * (dpabs[s] + dabs + 1.0) * scale;
            for (size_t d = 0; d < sh.Dh; ++d) {
              mq[row + d] += ds * std::fabs(k[s * kvs + off + d]);
              mk[s * kvs + off + d] += ds * std::fabs(q[row + d]);
              mv[s * kvs + off + d] += p[s] * std::fabs(dout[row + d]);
            }
          }
        }
      const double tol = (2.0 * static_cast<double>(sh.Dh) + static_cast<double>(P) + 32) * FLT_EPSILON;
      for (size_t e = 0; e < q.size(); ++e) ASSERT_LE(std::fabs(dq[e] - rdq[e]), tol * mq[e]) << "dq " << e << " T=" << sh.T;
      for (size_t e = 0; e < k.size(); ++e) ASSERT_LE(std::fabs(dk[e] - rdk[e]), tol * mk[e]) << "dk " << e << " T=" << sh.T;
      for (size_t e = 0; e < v.size(); ++e) ASSERT_LE(std::fabs(dv[e] - rdv[e]), tol * mv[e]) << "dv " << e << " T=" << sh.T;
    }
  }
}

// ---- Linear backward: the general GEMM -------------------------------------------------

// A Linear y = x·Wᵀ with J = Σ w·y: dX = w·W and dW = wᵀ·x, as the two GEMMs of gemm.h.
TEST(BackwardFd, LinearGemmsMatchCentralDifferences) {
  const size_t M = 3, N = 4, K = 5;
  const auto x = Normal(M * K, 31), W = Normal(N * K, 32), w = Normal(M * N, 33);
  std::vector<float> dx(M * K), dW(N * K, 0.0f);
  GemmRef(Trans::kNo, Trans::kNo, w.data(), W.data(), dx.data(), M, K, N);
  GemmRef(Trans::kYes, Trans::kNo, w.data(), x.data(), dW.data(), N, K, M, /*accumulate=*/true);
  auto J = [&](const std::vector<double>& xv, const std::vector<double>& Wv) {
    double j = 0;
    for (size_t m = 0; m < M; ++m)
      for (size_t n = 0; n < N; ++n) {
        double y = 0;
        for (size_t k = 0; k < K; ++k) y += xv[m * K + k] * Wv[n * K + k];
        j += w[m * N + n] * y;
      }
    return j;
  };
  const std::vector<double> xd(x.begin(), x.end()), Wd(W.begin(), W.end());
  ExpectNear(dx, CentralDiff(x, [&](const std::vector<double>& v) { return J(v, Wd); }), "dX");
  ExpectNear(dW, CentralDiff(W, [&](const std::vector<double>& v) { return J(xd, v); }), "dW");
}

// Gemm (oneDNN where enabled) and GemmLoops against GemmRef in all four layouts, with and
// without accumulation: within K·ε·Σ|a||b| (+ ε·|c| for the accumulated C), f32 sums.
TEST(Gemm, EveryLayoutMatchesRef) {
  struct Shape {
    size_t M, N, K;
  };
  // {9, 3, 5000}, {2, 300, 4800}: a reduction long enough for Gemm's transposed form.
  for (const Shape sh : {Shape{1, 1, 1}, Shape{7, 5, 3}, Shape{16, 33, 64}, Shape{64, 48, 129}, Shape{3, 200, 17},
                         Shape{9, 3, 5000}, Shape{2, 300, 4800}}) {
    const auto a = Normal(sh.M * sh.K, 41), b = Normal(sh.K * sh.N, 42), c0 = Normal(sh.M * sh.N, 43);
    for (Trans ta : {Trans::kNo, Trans::kYes})
      for (Trans tb : {Trans::kNo, Trans::kYes})
        for (bool acc : {false, true})
          for (int threads : {1, 2}) {
            std::vector<float> ref = c0, fast = c0, loops = c0;
            GemmRef(ta, tb, a.data(), b.data(), ref.data(), sh.M, sh.N, sh.K, acc);
            Gemm(threads, ta, tb, a.data(), b.data(), fast.data(), sh.M, sh.N, sh.K, acc);
            GemmLoops(threads, ta, tb, a.data(), b.data(), loops.data(), sh.M, sh.N, sh.K, acc);
            if (!OnednnDisabled()) {  // oneDNN must take every layout (a silent fallback would hide a bad descriptor)
              std::vector<float> direct = c0;
              ASSERT_TRUE(GemmOnednnF32General(threads, ta == Trans::kYes, tb == Trans::kYes, a.data(), b.data(),
                                               direct.data(), sh.M, sh.N, sh.K, acc));
            }
            for (size_t m = 0; m < sh.M; ++m)
              for (size_t n = 0; n < sh.N; ++n) {
                double mag = acc ? std::fabs(c0[m * sh.N + n]) : 0.0;
                for (size_t k = 0; k < sh.K; ++k) {
                  const double x = ta == Trans::kYes ? a[k * sh.M + m] : a[m * sh.K + k];
                  const double y = tb == Trans::kYes ? b[n * sh.K + k] : b[k * sh.N + n];
                  mag += std::fabs(x * y);
                }
                const double tol = (static_cast<double>(sh.K) + 2) * FLT_EPSILON * mag + FLT_MIN;
                const size_t e = m * sh.N + n;
                ASSERT_LE(std::fabs(fast[e] - ref[e]), tol)
                    << "Gemm M=" << sh.M << " N=" << sh.N << " K=" << sh.K << " ta=" << (ta == Trans::kYes)
                    << " tb=" << (tb == Trans::kYes) << " acc=" << acc;
                ASSERT_LE(std::fabs(loops[e] - ref[e]), tol) << "GemmLoops";
              }
          }
  }
}

}  // namespace
}  // namespace nibble::kernels
