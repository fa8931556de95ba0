// Checks CausalAttention (1 and 2 threads, GQA and plain MHA, prompts and single tokens
// over a filled cache) on every compiled Highway target (its softmax is dispatched)
// against CausalAttentionRef (double).
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "hwy/tests/hwy_gtest.h"
#include "util/random_vec.h"

namespace nibble::kernels {
namespace {

// Per (token, head) absolute bound, from the error of each stage (ε = FLT_EPSILON):
// a score errs by δ <= (Dh + 2)·ε·A with A = max_s Σ|q||k_s| / sqrt(Dh); the softmax
// then errs relatively by 2δ + (n + 8 + 2·max|S|)·ε (kernels/softmax_test.cc); the
// weighted sum of n terms adds n·ε·max|v|. All times max|v|, doubled for headroom.
constexpr double kTolSafety = 2.0;

using test::RandomVec;

void Check(size_t T, size_t start_pos, size_t H, size_t KV, size_t Dh, int threads) {
  const size_t P = start_pos + T;
  const std::vector<float> q = RandomVec(T * H * Dh, 1), k = RandomVec(P * KV * Dh, 2), v = RandomVec(P * KV * Dh, 3);
  std::vector<float> out(T * H * Dh, NAN), ref(T * H * Dh), scratch(static_cast<size_t>(threads) * P);
  CausalAttention(threads, q.data(), k.data(), v.data(), out.data(), T, start_pos, H, KV, Dh, scratch.data());
  CausalAttentionRef(q.data(), k.data(), v.data(), ref.data(), T, start_pos, H, KV, Dh);
  const double vmax = std::fabs(*std::max_element(v.begin(), v.end(), [](float a, float b) {
    return std::fabs(a) < std::fabs(b);
  }));
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < H; ++i) {
      const size_t n = start_pos + t + 1, off = (i / (H / KV)) * Dh;
      double A = 0.0, smax = 0.0;
      for (size_t s = 0; s < n; ++s) {
        double abs_dot = 0.0, dot = 0.0;
        for (size_t d = 0; d < Dh; ++d) {
          const double prod = static_cast<double>(q[(t * H + i) * Dh + d]) * k[s * KV * Dh + off + d];
          abs_dot += std::fabs(prod);
          dot += prod;
        }
        A = std::max(A, abs_dot / std::sqrt(static_cast<double>(Dh)));
        smax = std::max(smax, std::fabs(dot) / std::sqrt(static_cast<double>(Dh)));
      }
      const double delta = (static_cast<double>(Dh) + 2.0) * FLT_EPSILON * A;
      const double rel = 2.0 * delta + (static_cast<double>(2 * n) + 8.0 + 2.0 * smax) * FLT_EPSILON;
      const double tol = kTolSafety * rel * vmax;
      for (size_t d = 0; d < Dh; ++d) {
        const size_t idx = (t * H + i) * Dh + d;
        ASSERT_LE(std::fabs(out[idx] - ref[idx]), tol)
            << "T=" << T << " start=" << start_pos << " H=" << H << " KV=" << KV << " t=" << t << " head=" << i;
      }
    }
  }
}

class AttentionTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(AttentionTest);

TEST_P(AttentionTest, PromptMatchesRef) {
  Check(/*T=*/9, /*start_pos=*/0, /*H=*/8, /*KV=*/4, /*Dh=*/8, 1);
  Check(17, 0, 4, 4, 16, 2);
}

TEST_P(AttentionTest, CachedTokensMatchRef) {
  Check(1, 40, 8, 2, 8, 1);
  Check(3, 100, 6, 3, 32, 2);
}

TEST_P(AttentionTest, ModelShapesAndRaggedTailsMatchRef) {
  // SmolLM2-135M heads (H = 9, KV = 3, Dh = 64) past a full 16-key block, and a head size
  // that is not a multiple of any vector width (Dh = 20: vector part plus scalar tail)
  // with position counts that leave 16-, 4- and 1-key remainders.
  Check(/*T=*/5, /*start_pos=*/37, /*H=*/9, /*KV=*/3, /*Dh=*/64, 2);
  Check(1, 511, 9, 3, 64, 1);
  Check(4, 50, 4, 2, 20, 1);
  Check(23, 0, 2, 1, 20, 2);
}

TEST_P(AttentionTest, FirstTokenCopiesItsValue) {
  // One position: softmax of one score is 1, so each head returns its kv head's value.
  const size_t H = 4, KV = 2, Dh = 8;
  const std::vector<float> q = RandomVec(H * Dh, 4), k = RandomVec(KV * Dh, 5), v = RandomVec(KV * Dh, 6);
  std::vector<float> out(H * Dh), scratch(1);
  CausalAttention(1, q.data(), k.data(), v.data(), out.data(), 1, 0, H, KV, Dh, scratch.data());
  for (size_t i = 0; i < H; ++i)
    for (size_t d = 0; d < Dh; ++d) EXPECT_EQ(out[i * Dh + d], v[(i / 2) * Dh + d]);
}

}  // namespace
}  // namespace nibble::kernels
