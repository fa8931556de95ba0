// GemvGroup against separate MatMul / MatMulBf16 calls with M = 1 (bit for bit: the
// same single-row kernel runs on every row whatever range a thread gets) and against
// the double MatMulRef within MatMul's own bound.
#include "kernels/gemv_group.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/float_convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"

namespace nibble::kernels {
namespace {

TEST(GemvGroup, EqualsSeparateGemvsBitForBit) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (size_t K : {1u, 33u, 576u}) {
    const std::vector<size_t> ns = {576, 5, 192, 17, 1536};
    std::vector<float> x(K);
    for (auto& v : x) v = nd(rng);
    std::vector<std::vector<float>> wf(ns.size());
    std::vector<std::vector<uint16_t>> wb(ns.size());
    std::vector<std::vector<float>> got(ns.size()), want(ns.size());
    std::vector<GemvOut> outs;
    for (size_t i = 0; i < ns.size(); ++i) {
      wf[i].resize(ns[i] * K);
      for (auto& v : wf[i]) v = nd(rng);
      for (float v : wf[i]) wb[i].push_back(F32ToBF16(v));
      got[i].assign(ns[i], -1.0f);
      want[i].resize(ns[i]);
      const bool bf16 = i % 2 == 1;  // mixed dtypes in one group
      outs.push_back({bf16 ? static_cast<const void*>(wb[i].data()) : wf[i].data(), bf16, got[i].data(), ns[i]});
      if (bf16) {
        MatMulBf16(1, x.data(), wb[i].data(), want[i].data(), 1, ns[i], K);
      } else {
        MatMul(1, x.data(), wf[i].data(), want[i].data(), 1, ns[i], K);
      }
    }
    for (int threads : {1, 2, 3}) {
      for (auto& g : got) std::fill(g.begin(), g.end(), -1.0f);
      GemvGroup(threads, x.data(), K, outs);
      for (size_t i = 0; i < ns.size(); ++i)
        for (size_t r = 0; r < ns[i]; ++r)
          ASSERT_EQ(got[i][r], want[i][r]) << "K=" << K << " threads=" << threads << " matrix " << i << " row " << r;
    }
  }
}

TEST(GemvGroup, MatchesTheDoubleReference) {
  // MatMul's bound (matmul_test.cc): K·eps·Σ|x·w| covers any f32 summation order.
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t K = 100, N1 = 40, N2 = 9;
  std::vector<float> x(K), w1(N1 * K), w2(N2 * K), y1(N1), y2(N2), r1(N1), r2(N2);
  for (auto* v : {&x, &w1, &w2})
    for (auto& e : *v) e = nd(rng);
  const GemvOut outs[] = {{w1.data(), false, y1.data(), N1}, {w2.data(), false, y2.data(), N2}};
  GemvGroup(2, x.data(), K, outs);
  MatMulRef(x.data(), w1.data(), r1.data(), 1, N1, K);
  MatMulRef(x.data(), w2.data(), r2.data(), 1, N2, K);
  for (size_t n = 0; n < N1; ++n) {
    double s = 0;
    for (size_t k = 0; k < K; ++k) s += std::abs(double(x[k]) * w1[n * K + k]);
    EXPECT_NEAR(y1[n], r1[n], K * 1.2e-7 * s);
  }
  for (size_t n = 0; n < N2; ++n) {
    double s = 0;
    for (size_t k = 0; k < K; ++k) s += std::abs(double(x[k]) * w2[n * K + k]);
    EXPECT_NEAR(y2[n], r2[n], K * 1.2e-7 * s);
  }
}

}  // namespace
}  // namespace nibble::kernels
