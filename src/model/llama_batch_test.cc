// The multi-sequence forward against LlamaModel::Forward (the same LayerForward, so one
// sequence gives the same bits), and every parameter gradient of BackwardBatch against
// central differences of the loss.
#include "model/llama_batch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "core/exec_context.h"
#include "kernels/cross_entropy.h"
#include "model/kv_cache.h"
#include "model/tiny_llama_testing.h"

namespace nibble::model {
namespace {

using testing::RandomWeights;
using testing::TinyConfig;

std::vector<int32_t> Tokens(size_t n, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
  return t;
}

// Logits of each sequence run alone through the inference path (KV cache, kAll).
std::vector<float> InferenceLogits(const LlamaModel& m, const std::vector<int32_t>& tokens, size_t B, size_t T,
                                   int threads) {
  ExecContext ctx(threads);
  const size_t V = static_cast<size_t>(m.config().vocab_size);
  std::vector<float> out(B * T * V);
  for (size_t b = 0; b < B; ++b) {
    KvCache cache(ctx.allocator(), m.config(), static_cast<int64_t>(T));
    m.Forward(ctx, cache, std::span(tokens).subspan(b * T, T), 0, std::span(out).subspan(b * T * V, T * V),
              LogitsMode::kAll);
  }
  return out;
}

std::vector<float> BatchLogits(const LlamaModel& m, const std::vector<int32_t>& tokens, size_t B, size_t T,
                               int threads) {
  Allocator acts_alloc, logits_alloc, scratch;
  BatchActivations acts(acts_alloc, logits_alloc, m.config(), Batch{B, T, 0}, threads);
  ForwardBatch(m, tokens, acts, LinearCall{threads, &scratch});
  return std::vector<float>(acts.logits(), acts.logits() + B * T * m.config().vocab_size);
}

TEST(ForwardBatch, OneSequenceGivesTheInferenceLogitsBitForBit) {
  for (const bool tied : {false, true}) {
    LlamaConfig c = TinyConfig();
    c.tie_word_embeddings = tied;
    RandomWeights rw;
    const LlamaModel m(c, rw.Build(c));
    const std::vector<int32_t> tokens = Tokens(21, c.vocab_size, 3);
    for (const int threads : {1, 2}) {
      const std::vector<float> a = InferenceLogits(m, tokens, 1, tokens.size(), threads);
      const std::vector<float> b = BatchLogits(m, tokens, 1, tokens.size(), threads);
      ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "tied " << tied;
    }
  }
}

// With B > 1 the matmuls see M = B·T rows instead of T; a GEMM may block M differently,
// which reorders no sum over K but may pick another kernel (oneDNN from 16 rows), whose
// accumulation order differs: agreement within 1e-5 of the largest logit (f32 sums over
// K <= 48 terms of unit size stay within ~1e-6 relative; 10x margin).
TEST(ForwardBatch, EachSequenceMatchesItsOwnInferenceRun) {
  for (const auto layout : {kernels::RopeLayout::kAdjacentPairs, kernels::RopeLayout::kRotateHalf}) {
    LlamaConfig c = TinyConfig();
    c.rope_layout = layout;
    RandomWeights rw;
    const LlamaModel m(c, rw.Build(c));
    const size_t B = 3, T = 9;
    const std::vector<int32_t> tokens = Tokens(B * T, c.vocab_size, 5);
    const std::vector<float> a = InferenceLogits(m, tokens, B, T, 2);
    const std::vector<float> b = BatchLogits(m, tokens, B, T, 2);
    float scale = 0;
    for (float x : a) scale = std::max(scale, std::fabs(x));
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * scale) << i;
  }
}

TEST(ForwardBatch, RejectsBadTokensNamingThePosition) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  const LlamaModel m(c, rw.Build(c));
  Allocator x, y, s;
  BatchActivations acts(x, y, c, Batch{2, 3, 0}, 1);
  std::vector<int32_t> tokens(6, 1);
  tokens[4] = static_cast<int32_t>(c.vocab_size);
  try {
    ForwardBatch(m, tokens, acts, LinearCall{1, &s});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 1, position 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ForwardBatch(m, std::span(tokens).first(5), acts, LinearCall{1, &s}), ShapeError);
}

// A tiny model, a batch and its targets; Loss() is the mean cross-entropy over the
// targets that are not ignored (-100), in double, and with `g` also runs the backward.
struct Problem {
  LlamaConfig c;
  RandomWeights rw;
  LlamaWeights w;
  size_t B = 2, T = 6;
  std::vector<int32_t> tokens, targets;
  int threads = 2;

  explicit Problem(bool tied) {
    c = TinyConfig();
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.vocab_size = 20;
    c.tie_word_embeddings = tied;
    w = rw.Build(c);
    tokens = Tokens(B * T, c.vocab_size, 11);
    targets = Tokens(B * T, c.vocab_size, 12);
    targets[3] = -100;
  }
  double Loss(const ModelGrads* g) const {
    const LlamaModel m(c, w);
    Allocator x, y, s;
    BatchActivations acts(x, y, c, Batch{B, T, 0}, threads);
    const LinearCall call{threads, &s, true};
    ForwardBatch(m, tokens, acts, call);
    size_t counted = 0;
    const size_t N = B * T, V = static_cast<size_t>(c.vocab_size);
    kernels::CrossEntropy(threads, acts.logits(), targets.data(), nullptr, N, V, -100, 1.0f, &counted);
    const double loss =
        kernels::CrossEntropy(threads, acts.logits(), targets.data(), g ? acts.logits() : nullptr, N, V, -100,
                              1.0f / static_cast<float>(counted), &counted) /
        static_cast<double>(counted);
    if (g != nullptr) BackwardBatch(m, acts, acts.logits(), *g, call);
    return loss;
  }
};

// Every parameter of a tiny model (biases, GQA, tied and untied classifier) by central
// differences. The forward runs in f32: a loss of ~3 carries ~3e-7 of rounding noise, which
// a step of h = 1e-3 turns into ~3e-4 of noise in the quotient; the truncation error
// h²·f'''/6 is far below that. Tolerance 1e-3 + 1e-2·|g|.
TEST(BackwardBatch, EveryGradientMatchesCentralDifferences) {
  for (const bool tied : {false, true}) {
    Problem p(tied);
    std::map<std::string, std::vector<float>> grads;
    ModelGrads g;
    g.layers.resize(p.w.layers.size());
    ForEachRole(p.c, [&](const RoleAt& r) {
      std::vector<float>& v = grads[r.Label()];
      v.assign(static_cast<size_t>(r.role->ShapeIn(p.c).NumElems()), 0.0f);
      g.Slot(r) = v.data();
    });
    p.Loss(&g);
    size_t checked = 0;
    ForEachRole(p.c, [&](const RoleAt& r) {
      const LinearWeight* lin = r.Linear(p.w);
      const ConstTensorView& view = lin ? lin->dense : *r.View(p.w);
      float* data = const_cast<float*>(static_cast<const float*>(view.data));
      const std::vector<float>& ana = grads[r.Label()];
      // Every element of the small tensors; a third of the larger ones (first and last
      // always), which keeps the test to a few seconds under the sanitizers.
      const size_t stride = ana.size() > 64 ? 3 : 1;
      std::vector<size_t> picks;
      for (size_t i = 0; i < ana.size(); i += stride) picks.push_back(i);
      if (picks.back() != ana.size() - 1) picks.push_back(ana.size() - 1);
      for (const size_t i : picks) {
        const float keep = data[i];
        const float h = 1e-3f;
        data[i] = keep + h;
        const double up = p.Loss(nullptr);
        data[i] = keep - h;
        const double down = p.Loss(nullptr);
        data[i] = keep;
        const double num = (up - down) / (2.0 * h);
        ASSERT_NEAR(ana[i], num, 1e-3 + 1e-2 * std::fabs(num)) << r.Label() << "[" << i << "] tied " << tied;
        ++checked;
      }
    });
    EXPECT_GT(checked, 1000u);
  }
}

}  // namespace
}  // namespace nibble::model
