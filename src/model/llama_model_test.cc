// Checks LlamaModel::Forward on a random tiny Llama (GQA, q/k/v biases, untied head)
// against a double-precision forward pass written from spec §4.2 in this file; that
// batched prompts equal token-by-token decoding; that the two RoPE layouts agree under
// the §4.4 permutation; and the ShapeError/ConfigError checks at the boundary.
#include "model/llama_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "model/tiny_llama_testing.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {
using testing::RandomWeights;
using testing::TinyConfig;

// Spec §4.2 precision policy: fp32 logits within 1e-4 of the logit scale (max |logit|)
// against a double reference; per stage the f32 error is ~K·u (K <= 48 here) over ~15
// stages, i.e. ~5e-5 relative, under the bound.
constexpr double kTolLogitsRel = 1e-4;
// Batched vs token-by-token: the GEMV (M = 1) sums each dot product in 4 partial sums,
// the tiled path (M > 1) in one, so the logits differ by f32 rounding: each dot product
// by <= K·eps·Σ|x·w| (K <= 64 here: ~8e-6 relative at worst, ~1e-7 typical), through
// ~9 matmuls; 1e-5 of the logit scale. A wrong position, mask or cache row moves logits
// by O(1e-1) of the scale.
constexpr double kTolBatchedRel = 1e-5;

const float* P(const ConstTensorView& t) { return static_cast<const float*>(t.data); }

// y[N] = W[N,K] x[K] (+ b) in double.
std::vector<double> Linear(const ConstTensorView& w, const std::vector<double>& x, const ConstTensorView* b) {
  const size_t N = static_cast<size_t>(w.shape[0]), K = static_cast<size_t>(w.shape[1]);
  std::vector<double> y(N, 0.0);
  for (size_t n = 0; n < N; ++n) {
    for (size_t k = 0; k < K; ++k) y[n] += static_cast<double>(P(w)[n * K + k]) * x[k];
    if (b != nullptr && b->data != nullptr) y[n] += P(*b)[n];
  }
  return y;
}

std::vector<double> RmsNormD(const std::vector<double>& x, const ConstTensorView& g, double eps) {
  double ss = 0.0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = P(g)[i] * (x[i] * inv);
  return y;
}

// Adjacent-pair RoPE in double for one position over `heads` heads of Dh.
void RopeD(std::vector<double>& x, size_t heads, size_t Dh, int64_t pos, double theta) {
  for (size_t h = 0; h < heads; ++h)
    for (size_t j = 0; j < Dh / 2; ++j) {
      const double ang = static_cast<double>(pos) * std::pow(theta, -2.0 * static_cast<double>(j) / Dh);
      const double a = x[h * Dh + 2 * j], b = x[h * Dh + 2 * j + 1];
      x[h * Dh + 2 * j] = a * std::cos(ang) - b * std::sin(ang);
      x[h * Dh + 2 * j + 1] = b * std::cos(ang) + a * std::sin(ang);
    }
}

// Spec §4.2 in double, all T tokens from position 0: logits [T, V].
std::vector<double> ForwardRef(const LlamaConfig& c, const LlamaWeights& w, const std::vector<int32_t>& tokens) {
  const size_t T = tokens.size(), D = static_cast<size_t>(c.hidden_size), Dh = static_cast<size_t>(c.HeadDim());
  const size_t H = static_cast<size_t>(c.num_attention_heads), KV = static_cast<size_t>(c.num_key_value_heads);
  std::vector<std::vector<double>> h(T, std::vector<double>(D));
  for (size_t t = 0; t < T; ++t)
    for (size_t i = 0; i < D; ++i) h[t][i] = P(w.embed)[static_cast<size_t>(tokens[t]) * D + i];
  for (const LlamaLayerWeights& lw : w.layers) {
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (size_t t = 0; t < T; ++t) {
      const std::vector<double> a = RmsNormD(h[t], lw.attn_norm, c.rms_norm_eps);
      q[t] = Linear(lw.wq.dense, a, &lw.bq);
      k[t] = Linear(lw.wk.dense, a, &lw.bk);
      v[t] = Linear(lw.wv.dense, a, &lw.bv);
      RopeD(q[t], H, Dh, static_cast<int64_t>(t), c.rope_theta);
      RopeD(k[t], KV, Dh, static_cast<int64_t>(t), c.rope_theta);
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> o(H * Dh, 0.0);
      for (size_t i = 0; i < H; ++i) {
        const size_t j = i / (H / KV);
        std::vector<double> s(t + 1);
        double mx = -INFINITY, sum = 0.0;
        for (size_t p = 0; p <= t; ++p) {
          s[p] = 0.0;
          for (size_t d = 0; d < Dh; ++d) s[p] += q[t][i * Dh + d] * k[p][j * Dh + d];
          s[p] /= std::sqrt(static_cast<double>(Dh));
          mx = std::max(mx, s[p]);
        }
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (size_t p = 0; p <= t; ++p)
          for (size_t d = 0; d < Dh; ++d) o[i * Dh + d] += s[p] / sum * v[p][j * Dh + d];
      }
      const std::vector<double> attn = Linear(lw.wo.dense, o, nullptr);
      for (size_t i = 0; i < D; ++i) h[t][i] += attn[i];
      const std::vector<double> m = RmsNormD(h[t], lw.ffn_norm, c.rms_norm_eps);
      std::vector<double> g = Linear(lw.w_gate.dense, m, nullptr);
      const std::vector<double> u = Linear(lw.w_up.dense, m, nullptr);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const std::vector<double> down = Linear(lw.w_down.dense, g, nullptr);
      for (size_t i = 0; i < D; ++i) h[t][i] += down[i];
    }
  }
  std::vector<double> logits;
  for (size_t t = 0; t < T; ++t) {
    const std::vector<double> row = Linear(w.Classifier(c).dense, RmsNormD(h[t], w.final_norm, c.rms_norm_eps), nullptr);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

const std::vector<int32_t> kTokens = {1, 5, 39, 0, 17, 17, 2, 30, 11, 8, 25};

TEST(LlamaModelTest, PromptLogitsMatchDoubleReference) {
  for (int threads : {1, 2}) {
    const LlamaConfig c = TinyConfig();
    RandomWeights rw;
    const LlamaModel model(c, rw.Build(c));
    ExecContext ctx(threads);
    KvCache cache(ctx.allocator(), c, 16);
    std::vector<float> logits(kTokens.size() * c.vocab_size);
    model.Forward(ctx, cache, kTokens, 0, logits, LogitsMode::kAll);
    const std::vector<double> ref = ForwardRef(c, model.weights(), kTokens);
    const double tol = kTolLogitsRel * MaxAbs(ref);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(logits[i], ref[i], tol) << "index " << i;
  }
}

TEST(LlamaModelTest, BatchedPromptEqualsTokenByToken) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  const LlamaModel model(c, rw.Build(c));
  ExecContext ctx(1);
  const size_t V = static_cast<size_t>(c.vocab_size), T = kTokens.size();
  KvCache batched_cache(ctx.allocator(), c, 16), step_cache(ctx.allocator(), c, 16);
  std::vector<float> batched(T * V), step(V);
  model.Forward(ctx, batched_cache, kTokens, 0, batched, LogitsMode::kAll);
  double max_diff = 0.0, scale = 0.0;
  for (size_t t = 0; t < T; ++t) {
    model.Forward(ctx, step_cache, std::span(kTokens).subspan(t, 1), static_cast<int64_t>(t), step);
    for (size_t i = 0; i < V; ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(step[i] - batched[t * V + i])));
      scale = std::max(scale, static_cast<double>(std::fabs(batched[t * V + i])));
    }
  }
  EXPECT_LE(max_diff, kTolBatchedRel * scale);
  // kLast returns the last row of kAll.
  KvCache last_cache(ctx.allocator(), c, 16);
  std::vector<float> last(V);
  model.Forward(ctx, last_cache, kTokens, 0, last);
  for (size_t i = 0; i < V; ++i) EXPECT_NEAR(last[i], batched[(T - 1) * V + i], kTolBatchedRel * scale);
}

TEST(LlamaModelTest, RotateHalfWithPermutedRowsMatchesAdjacentPairs) {
  // Spec §4.4: HF row p·Dh/2 + j = interleaved row 2j + p, for q (H heads) and k (KV heads),
  // weights and biases. The scores are the same sums in another order.
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  const LlamaWeights w = rw.Build(c);
  const LlamaModel adjacent(c, w);
  const size_t Dh = static_cast<size_t>(c.HeadDim()), D = static_cast<size_t>(c.hidden_size);
  LlamaConfig hc = c;
  hc.rope_layout = kernels::RopeLayout::kRotateHalf;
  LlamaWeights hw = w;
  std::vector<std::vector<float>> permuted;
  permuted.reserve(4 * w.layers.size());
  auto permute = [&](const ConstTensorView& t, size_t cols) {
    const size_t rows = static_cast<size_t>(t.shape[0]);
    std::vector<float> out(rows * cols);
    for (size_t h = 0; h < rows / Dh; ++h)
      for (size_t j = 0; j < Dh / 2; ++j)
        for (size_t p = 0; p < 2; ++p)
          std::copy_n(P(t) + (h * Dh + 2 * j + p) * cols, cols, out.begin() + (h * Dh + p * Dh / 2 + j) * cols);
    permuted.push_back(std::move(out));
    return ConstTensorView{permuted.back().data(), DType::kF32, t.shape};
  };
  for (LlamaLayerWeights& lw : hw.layers) {
    lw.wq.dense = permute(lw.wq.dense, D);
    lw.wk.dense = permute(lw.wk.dense, D);
    lw.bq = permute(lw.bq, 1);
    lw.bk = permute(lw.bk, 1);
  }
  const LlamaModel half(hc, hw);
  ExecContext ctx(1);
  const size_t V = static_cast<size_t>(c.vocab_size), T = kTokens.size();
  KvCache c1(ctx.allocator(), c, 16), c2(ctx.allocator(), c, 16);
  std::vector<float> a(T * V), b(T * V);
  adjacent.Forward(ctx, c1, kTokens, 0, a, LogitsMode::kAll);
  half.Forward(ctx, c2, kTokens, 0, b, LogitsMode::kAll);
  double scale = 0.0;
  for (float x : a) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  // Only the order of the Dh-term score sums differs: a few ulps of the logit scale.
  constexpr double kTolPermutedRel = 1e-5;
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], kTolPermutedRel * scale) << "index " << i;
}

TEST(LlamaModelTest, BoundaryChecksThrow) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  const LlamaModel model(c, rw.Build(c));
  ExecContext ctx(1);
  KvCache cache(ctx.allocator(), c, 8);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  const std::vector<int32_t> bad_token = {1, 40};
  EXPECT_THROW(model.Forward(ctx, cache, bad_token, 0, logits), ShapeError);
  const std::vector<int32_t> ok = {1, 2};
  EXPECT_THROW(model.Forward(ctx, cache, ok, 7, logits), ShapeError);   // positions 7..8 > 8
  EXPECT_THROW(model.Forward(ctx, cache, ok, -1, logits), ShapeError);
  EXPECT_THROW(model.Forward(ctx, cache, {}, 0, logits), ShapeError);
  std::vector<float> small(3);
  EXPECT_THROW(model.Forward(ctx, cache, ok, 0, small), ShapeError);
  LlamaConfig other = c;
  other.num_key_value_heads = 4;
  KvCache wrong(ctx.allocator(), other, 8);
  EXPECT_THROW(model.Forward(ctx, wrong, ok, 0, logits), ShapeError);
  EXPECT_NO_THROW(model.Forward(ctx, cache, ok, 6, logits));
}

TEST(LlamaModelTest, WeightAndConfigErrorsNameTheField) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  LlamaWeights w = rw.Build(c);
  w.layers[1].w_up.dense.shape = Shape{47, 32};
  try {
    LlamaModel m(c, w);
    FAIL() << "no ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1 w_up"), std::string::npos) << e.what();
  }
  LlamaConfig bad = c;
  bad.num_key_value_heads = 3;
  try {
    bad.Validate();
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads"), std::string::npos) << e.what();
  }
  bad = c;
  bad.rms_norm_eps = 0.0f;
  EXPECT_THROW(bad.Validate(), ConfigError);
  bad = c;
  bad.hidden_size = 0;
  EXPECT_THROW(bad.Validate(), ConfigError);
}

TEST(LlamaModelTest, KvCacheBytesAreCounted) {
  const LlamaConfig c = TinyConfig();
  Allocator alloc;
  {
    KvCache cache(alloc, c, 10);
    // K and V: L x max_seq x KV·Dh f32 each.
    const size_t want = 2 * 2 * 10 * static_cast<size_t>(c.KvDim()) * sizeof(float);
    EXPECT_GE(alloc.live_bytes(), want);
    EXPECT_EQ(cache.num_bytes(), want);
  }
  EXPECT_EQ(alloc.live_bytes(), 0u);
  EXPECT_THROW(KvCache(alloc, c, 0), ConfigError);
}

}  // namespace
}  // namespace nibble::model
