// Checks the bf16-weight path of the Llama model: ConvertWeightsToBf16 (RNE of every
// matrix, f32 copies of norms and biases, dtype checks), the bf16 forward against the f32
// forward of the same bf16-rounded weights widened back to f32, the exact bf16 embedding
// lookup, and batched vs token-by-token decoding with bf16 weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/float_convert.h"
#include "model/llama_model.h"
#include "model/llama_weights.h"
#include "model/tiny_llama_testing.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {
using testing::RandomWeights;
using testing::TinyConfig;

// bf16 model vs f32 model on the same (bf16-valued) weights: the only difference is that
// MatMulBf16 rounds each matmul input to bf16 (relative error <= 2^-9, ~2^-9/√3 rms for a
// uniform rounding error). About 9 matmuls lie on the path to the logits (2 layers x
// {q/k/v, o, gate/up, down} + head), so the perturbations add to ~9·2^-9/√3 ≈ 1e-2 of the
// logit scale taken linearly; 3e-2 leaves a 3x margin, while a misread weight (wrong
// dtype, byte order or row) moves logits by O(1) of the scale.
constexpr double kTolBf16VsWidenedRel = 3e-2;
// Batched vs token-by-token with bf16 weights: a prompt of M >= 8 rows runs oneDNN's
// bf16 x bf16 GEMM, which first rounds the activations to bf16 (kernels/gemm_onednn.h),
// while one token keeps f32 activations. That is the same kind of perturbation as
// kTolBf16VsWidenedRel's (~9 rounding steps of 2^-9 on the path to the logits, ~1e-2 of
// the logit scale taken linearly); measured 1e-4 relative. With NIBBLE_DISABLE_ONEDNN=1
// both paths sum in the same order and agree to ~1e-7.
constexpr double kTolBatchedRel = 1e-2;

const std::vector<int32_t> kTokens = {1, 5, 39, 0, 17, 17, 2, 30, 11, 8, 25};

// f32 copy of `w`: bf16 matrices widened exactly, f32 tensors shared.
struct Widened {
  std::vector<std::vector<float>> store;
  ConstTensorView Widen(const ConstTensorView& t) {
    if (t.data == nullptr || t.dtype != DType::kBF16) return t;
    const auto* b = static_cast<const uint16_t*>(t.data);
    std::vector<float>& v = store.emplace_back(static_cast<size_t>(t.NumElems()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = BF16ToF32(b[i]);
    return {v.data(), DType::kF32, t.shape};
  }
  LlamaWeights Of(const LlamaWeights& w) {
    store.reserve(64);
    LlamaWeights out = w;
    out.embed = Widen(w.embed);
    out.lm_head.dense = Widen(w.lm_head.dense);
    for (LlamaLayerWeights& l : out.layers) {
      for (LinearWeight* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) m->dense = Widen(m->dense);
    }
    return out;
  }
};

std::vector<float> RunAll(const LlamaModel& model, int threads) {
  ExecContext ctx(threads);
  KvCache cache(ctx.allocator(), model.config(), 16);
  std::vector<float> logits(kTokens.size() * static_cast<size_t>(model.config().vocab_size));
  model.Forward(ctx, cache, kTokens, 0, logits, LogitsMode::kAll);
  return logits;
}

double MaxAbs(const std::vector<float>& v) {
  double m = 0.0;
  for (float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

void ExpectRounded(const ConstTensorView& src, const ConstTensorView& dst) {
  ASSERT_EQ(dst.dtype, DType::kBF16);
  ASSERT_TRUE(dst.shape == src.shape);
  ASSERT_NE(dst.data, src.data);
  const auto* s = static_cast<const float*>(src.data);
  const auto* d = static_cast<const uint16_t*>(dst.data);
  for (int64_t i = 0; i < src.NumElems(); ++i) ASSERT_EQ(d[i], F32ToBF16(s[i])) << "element " << i;
}

void ExpectCopied(const ConstTensorView& src, const ConstTensorView& dst) {
  ASSERT_EQ(dst.dtype, DType::kF32);
  ASSERT_TRUE(dst.shape == src.shape);
  ASSERT_NE(dst.data, src.data);
  EXPECT_EQ(std::memcmp(dst.data, src.data, src.NumBytes()), 0);
}

TEST(LlamaBf16Test, ConvertRoundsMatricesAndCopiesVectors) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  const LlamaWeights src = rw.Build(c);
  Allocator alloc;
  const OwnedLlamaWeights owned = ConvertWeightsToBf16(alloc, src, 2);
  const LlamaWeights& w = owned.weights;
  EXPECT_NO_THROW(w.Validate(c));
  ExpectRounded(src.embed, w.embed);
  ExpectRounded(src.lm_head.dense, w.lm_head.dense);
  ExpectCopied(src.final_norm, w.final_norm);
  ASSERT_EQ(w.layers.size(), src.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LlamaLayerWeights &s = src.layers[l], &d = w.layers[l];
    ExpectRounded(s.wq.dense, d.wq.dense);
    ExpectRounded(s.wk.dense, d.wk.dense);
    ExpectRounded(s.wv.dense, d.wv.dense);
    ExpectRounded(s.wo.dense, d.wo.dense);
    ExpectRounded(s.w_gate.dense, d.w_gate.dense);
    ExpectRounded(s.w_up.dense, d.w_up.dense);
    ExpectRounded(s.w_down.dense, d.w_down.dense);
    ExpectCopied(s.attn_norm, d.attn_norm);
    ExpectCopied(s.ffn_norm, d.ffn_norm);
    ExpectCopied(s.bq, d.bq);
    ExpectCopied(s.bk, d.bk);
    ExpectCopied(s.bv, d.bv);
  }
  // Converting the bf16 weights again copies them bit for bit (no double rounding).
  const OwnedLlamaWeights again = ConvertWeightsToBf16(alloc, w);
  EXPECT_EQ(std::memcmp(again.weights.layers[1].w_up.dense.data, w.layers[1].w_up.dense.data, w.layers[1].w_up.dense.NumBytes()), 0);
}

TEST(LlamaBf16Test, DTypeErrorsNameTheRole) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  LlamaWeights w = rw.Build(c);
  const std::vector<uint16_t> half(static_cast<size_t>(c.hidden_size));
  w.layers[1].ffn_norm = {half.data(), DType::kBF16, w.layers[1].ffn_norm.shape};  // norms must stay f32
  try {
    w.Validate(c);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1 ffn_norm"), std::string::npos) << e.what();
  }
  Allocator alloc;
  EXPECT_THROW(ConvertWeightsToBf16(alloc, w), ShapeError);
  LlamaWeights w2 = rw.Build(c);
  w2.layers[0].wk.dense.dtype = DType::kF16;  // matrices: f32 or bf16 only
  EXPECT_THROW(w2.Validate(c), ShapeError);
  EXPECT_THROW(ConvertWeightsToBf16(alloc, w2), ShapeError);
}

TEST(LlamaBf16Test, Bf16ForwardMatchesWidenedF32Forward) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  Allocator alloc;
  const OwnedLlamaWeights owned = ConvertWeightsToBf16(alloc, rw.Build(c));
  Widened widened;
  const LlamaModel bf16_model(c, owned.weights);
  const LlamaModel f32_model(c, widened.Of(owned.weights));
  for (int threads : {1, 2}) {
    const std::vector<float> got = RunAll(bf16_model, threads), want = RunAll(f32_model, threads);
    const double scale = MaxAbs(want);
    double max_diff = 0.0;
    for (size_t i = 0; i < want.size(); ++i)
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    EXPECT_LE(max_diff, kTolBf16VsWidenedRel * scale) << "threads " << threads;
    // The activations really are rounded: the two forwards differ.
    EXPECT_GT(max_diff, 0.0) << "threads " << threads;
    RecordProperty("max_diff_rel_threads" + std::to_string(threads), std::to_string(max_diff / scale));
  }
}

TEST(LlamaBf16Test, Bf16EmbeddingIsWidenedExactly) {
  // Only the embedding is bf16: the lookup widens exactly and every matmul stays f32, so
  // the logits equal the f32 model's on the widened table bit for bit.
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  Allocator alloc;
  const LlamaWeights f32 = rw.Build(c);
  const OwnedLlamaWeights owned = ConvertWeightsToBf16(alloc, f32);
  LlamaWeights mixed = f32;
  mixed.embed = owned.weights.embed;
  Widened widened;
  const LlamaModel mixed_model(c, mixed);
  const LlamaModel f32_model(c, widened.Of(mixed));
  EXPECT_EQ(RunAll(mixed_model, 1), RunAll(f32_model, 1));
}

TEST(LlamaBf16Test, BatchedPromptEqualsTokenByToken) {
  const LlamaConfig c = TinyConfig();
  RandomWeights rw;
  Allocator alloc;
  const OwnedLlamaWeights owned = ConvertWeightsToBf16(alloc, rw.Build(c));
  const LlamaModel model(c, owned.weights);
  const std::vector<float> batched = RunAll(model, 2);
  ExecContext ctx(2);
  KvCache cache(ctx.allocator(), c, 16);
  const size_t V = static_cast<size_t>(c.vocab_size);
  const double tol = kTolBatchedRel * MaxAbs(batched);
  std::vector<float> step(V);
  for (size_t t = 0; t < kTokens.size(); ++t) {
    model.Forward(ctx, cache, std::span(kTokens).subspan(t, 1), static_cast<int64_t>(t), step);
    for (size_t i = 0; i < V; ++i) ASSERT_NEAR(step[i], batched[t * V + i], tol) << "token " << t << " logit " << i;
  }
}

}  // namespace
}  // namespace nibble::model
