// The Linear seam: the input gradient through f32, bf16 and quantized weights (row tiles
// across a tile boundary) against GemmRef on the weight as the forward sees it, the weight
// gradient, and an adapter's forward and backward calls.
#include "model/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/float_convert.h"
#include "kernels/gemm.h"

namespace nibble::model {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// |got − want| within 1e-5·Σ_k |dy|·|w| per element: the f32 sums of a GEMM over K terms.
void ExpectGemmClose(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& dy,
                     const std::vector<float>& w, size_t M, size_t N, size_t K) {
  for (size_t m = 0; m < M; ++m)
    for (size_t k = 0; k < K; ++k) {
      double mag = 0;
      for (size_t n = 0; n < N; ++n) mag += std::fabs(dy[m * N + n] * w[n * K + k]);
      ASSERT_NEAR(got[m * K + k], want[m * K + k], 1e-5 * mag + 1e-30) << m << "," << k;
    }
}

constexpr size_t M = 5, N = 300, K = 64;  // N > the 256-row tile

TEST(LinearBackward, InputGradientThroughEveryWeightKind) {
  Allocator alloc;
  const LinearCall call{2, &alloc};
  const std::vector<float> w32 = Random(N * K, 1), dy = Random(M * N, 2), x = Random(M * K, 3);
  std::vector<uint16_t> w16(N * K);
  std::vector<float> w16_wide(N * K);
  for (size_t i = 0; i < w16.size(); ++i) {
    w16[i] = F32ToBF16(w32[i]);
    w16_wide[i] = BF16ToF32(w16[i]);
  }
  const quant::QTensor q = quant::QuantizeMatrix(alloc, w32.data(), Shape{N, K}, DType::kF32,
                                                 {.method = quant::QuantMethod::kNf4}, 1);
  std::vector<float> wq(N * K);
  quant::DequantizeMatrix(q, wq.data(), 1);
  struct Case {
    LinearWeight w;
    const std::vector<float>* as_seen;
  };
  const Case cases[] = {{{ConstTensorView{w32.data(), DType::kF32, Shape{N, K}}}, &w32},
                        {{ConstTensorView{w16.data(), DType::kBF16, Shape{N, K}}}, &w16_wide},
                        {{ConstTensorView{}, &q}, &wq}};
  for (const Case& c : cases) {
    std::vector<float> want(M * K), got(M * K, 7.0f);
    kernels::GemmRef(kernels::Trans::kNo, kernels::Trans::kNo, dy.data(), c.as_seen->data(), want.data(), M, K, N);
    LinearBackward(call, c.w, x.data(), dy.data(), got.data(), false, nullptr, M);
    ExpectGemmClose(got, want, dy, *c.as_seen, M, N, K);
    // accumulate: adds onto what dx holds
    std::vector<float> twice = got;
    LinearBackward(call, c.w, x.data(), dy.data(), twice.data(), true, nullptr, M);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(twice[i], 2 * got[i], 1e-5f * (1 + std::fabs(got[i])));
  }
}

TEST(LinearBackward, WeightGradientAccumulatesDyTransposedX) {
  Allocator alloc;
  const std::vector<float> w = Random(N * K, 1), dy = Random(M * N, 2), x = Random(M * K, 3);
  std::vector<float> dw(N * K, 0.5f), want(N * K, 0.5f);
  LinearBackward(LinearCall{2, &alloc}, {ConstTensorView{w.data(), DType::kF32, Shape{N, K}}}, x.data(), dy.data(),
                 nullptr, false, dw.data(), M);
  kernels::GemmRef(kernels::Trans::kYes, kernels::Trans::kNo, dy.data(), x.data(), want.data(), N, K, M, true);
  for (size_t i = 0; i < dw.size(); ++i) ASSERT_NEAR(dw[i], want[i], 1e-5f * (1 + std::fabs(want[i])));
}

// y += 2x (in == out) and dx += 2dy: the calls arrive with the Linear's operands.
class Doubling : public LinearAdapter {
 public:
  mutable int forwards = 0, backwards = 0;
  void Forward(const LinearCall&, const float* x, float* y, size_t m) const override {
    ++forwards;
    for (size_t i = 0; i < m * K; ++i) y[i] += 2 * x[i];
  }
  void Backward(const LinearCall&, const float*, const float* dy, float* dx, size_t m) const override {
    ++backwards;
    if (dx != nullptr)
      for (size_t i = 0; i < m * K; ++i) dx[i] += 2 * dy[i];
  }
};

TEST(LinearSeam, AdapterAddsItsDeltaForwardAndBackward) {
  Allocator alloc;
  const LinearCall call{1, &alloc};
  std::vector<float> eye(K * K, 0.0f);
  for (size_t i = 0; i < K; ++i) eye[i * K + i] = 1.0f;
  Doubling ad;
  LinearWeight w{ConstTensorView{eye.data(), DType::kF32, Shape{K, K}}, nullptr, &ad};
  const std::vector<float> x = Random(1 * K, 4);
  std::vector<float> y(K), y2(K);
  LinearForward(call, w, x.data(), y.data(), 1);
  const LinearOut outs[] = {{&w, y2.data()}};
  LinearForwardGroup(call, x.data(), 1, outs);  // M == 1 with an adapter: not the fused GEMV
  for (size_t i = 0; i < K; ++i) {
    ASSERT_FLOAT_EQ(y[i], 3 * x[i]);
    ASSERT_FLOAT_EQ(y2[i], 3 * x[i]);
  }
  std::vector<float> dx(K);
  LinearBackward(call, w, x.data(), x.data(), dx.data(), false, nullptr, 1);
  for (size_t i = 0; i < K; ++i) ASSERT_FLOAT_EQ(dx[i], 3 * x[i]);
  EXPECT_EQ(ad.forwards, 2);
  EXPECT_EQ(ad.backwards, 1);
}

}  // namespace
}  // namespace nibble::model
