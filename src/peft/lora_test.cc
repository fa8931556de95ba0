// LoRA against PEFT's definitions: the delta s·(dropout(x)·Aᵀ)·Bᵀ in double, every A and
// B gradient through the whole model by central differences (with and without dropout),
// merge/unmerge, targeting rules and errors, the three initialisations.
#include "peft/lora.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cross_entropy.h"
#include "model/llama_batch.h"
#include "model/tiny_llama_testing.h"
#include "nibble/error.h"

namespace nibble::peft {
namespace {

using model::LinearCall;
using model::ParamIndex;

model::LlamaConfig Tiny() {
  model::LlamaConfig c = model::testing::TinyConfig();
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.vocab_size = 20;
  return c;
}

LoraConfig Config(std::vector<std::string> targets, LoraInit init = LoraInit::kNone, double dropout = 0) {
  LoraConfig c;
  c.r = 4;
  c.lora_alpha = 8;
  c.target_modules = std::move(targets);
  c.init = init;
  c.lora_dropout = dropout;
  return c;
}

TEST(Lora, TargetingFollowsPeftsRules) {
  const model::LlamaConfig mc = Tiny();
  const auto paths = [&](const LoraConfig& c) {
    std::vector<std::string> p;
    for (const model::RoleAt& r : TargetedLinears(mc, c)) p.push_back(ModulePath(r));
    return p;
  };
  EXPECT_EQ(paths(Config({"q_proj", "v_proj"})),
            (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  EXPECT_EQ(paths(Config({"model.layers.1.mlp.down_proj"})),
            (std::vector<std::string>{"model.layers.1.mlp.down_proj"}));
  const std::vector<std::string> all = paths(Config({"all-linear"}));
  EXPECT_EQ(all.size(), 14u);  // 7 per layer, never lm_head
  for (const std::string& p : all) EXPECT_EQ(p.find("lm_head"), std::string::npos);
  EXPECT_EQ(paths(Config({"lm_head"})), (std::vector<std::string>{"lm_head"}));  // by name it may be targeted
  try {
    paths(Config({"q_proj", "qkv_proj"}));
    FAIL();
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'qkv_proj' matches no Linear"), std::string::npos) << m;
    EXPECT_NE(m.find("down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj"), std::string::npos)
        << m;
  }
  EXPECT_THROW(paths(Config({"proj"})), ConfigError);  // suffixes match whole module names only
  LoraConfig bad = Config({"q_proj"});
  bad.lora_dropout = 1.0;
  EXPECT_THROW(bad.Validate(), ConfigError);
  bad = Config({"q_proj"});
  bad.r = 0;
  EXPECT_THROW(bad.Validate(), ConfigError);
  EXPECT_DOUBLE_EQ(Config({"q_proj"}).Scale(), 2.0);
  LoraConfig rs = Config({"q_proj"});
  rs.use_rslora = true;
  EXPECT_DOUBLE_EQ(rs.Scale(), 4.0);  // 8 / √4
}

TEST(Lora, InitialisationsAsPeft) {
  const model::LlamaConfig mc = Tiny();
  for (const LoraInit init : {LoraInit::kKaiming, LoraInit::kGaussian, LoraInit::kNone}) {
    ParamIndex index;
    const LoraModel lm(mc, Config({"model.layers.0.mlp.gate_proj"}, init), index, 1);
    std::vector<float> p(index.total(), 9.0f);
    lm.Init(index, p.data());
    const model::ParamEntry& a = index.entries()[0];  // [4, 16]
    const model::ParamEntry& b = index.entries()[1];  // [24, 4]
    double sq = 0;
    for (size_t k = 0; k < a.count; ++k) {
      const double x = p[a.offset + k];
      sq += x * x;
      if (init != LoraInit::kGaussian) {
        ASSERT_LE(std::fabs(x), 1 / std::sqrt(16.0));
      }
    }
    const double sd = std::sqrt(sq / a.count);
    if (init == LoraInit::kGaussian) {
      EXPECT_NEAR(sd, 1.0 / 4, 0.25 * 0.25);  // 64 draws: the sample sd is within ~9% (1σ); 25% margin
    } else {
      EXPECT_NEAR(sd, 1 / std::sqrt(16.0) / std::sqrt(3.0), 0.25 * 0.144);  // U(−b, b) has sd b/√3
    }
    for (size_t k = 0; k < b.count; ++k) {
      if (init == LoraInit::kNone) {
        ASSERT_LE(std::fabs(p[b.offset + k]), 0.5f);  // fan_in = r = 4
      } else {
        ASSERT_EQ(p[b.offset + k], 0.0f);
      }
    }
    EXPECT_EQ(index.entries()[0].name, "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight");
    EXPECT_EQ(index.entries()[1].name, "base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight");
  }
}

// A tiny model with LoRA on every Linear; Loss() is the mean cross-entropy, and with
// grads it runs the backward.
struct Problem {
  model::LlamaConfig c = Tiny();
  model::testing::RandomWeights rw;
  model::LlamaWeights base;
  ParamIndex index;
  std::unique_ptr<LoraModel> lora;
  std::vector<float> params, grads;
  std::vector<int32_t> tokens, targets;
  size_t B = 2, T = 5;

  explicit Problem(double dropout) {
    base = rw.Build(c);
    lora = std::make_unique<LoraModel>(c, Config({"all-linear"}, LoraInit::kNone, dropout), index, 3);
    params.assign(index.total(), 0.0f);
    grads.assign(index.total(), 0.0f);
    lora->Init(index, params.data());
    std::mt19937 rng(4);
    for (size_t i = 0; i < B * T; ++i) {
      tokens.push_back(static_cast<int32_t>(rng() % 20));
      targets.push_back(static_cast<int32_t>(rng() % 20));
    }
  }
  double Loss(bool backward) {
    model::LlamaWeights w = base;
    lora->Attach(index, params.data(), grads.data(), w);
    const model::LlamaModel m(c, w);
    Allocator x, y, s;
    model::BatchActivations acts(x, y, c, model::Batch{B, T, 0}, 2);
    const LinearCall call{2, &s, /*training=*/true, /*rng_counter=*/77};
    model::ForwardBatch(m, tokens, acts, call);
    size_t n = 0;
    const double sum = kernels::CrossEntropy(2, acts.logits(), targets.data(), backward ? acts.logits() : nullptr,
                                             B * T, 20, -100, 1.0f / static_cast<float>(B * T), &n);
    if (backward) model::BackwardBatch(m, acts, acts.logits(), model::ModelGrads{}, call);
    return sum / static_cast<double>(n);
  }
};

// Tolerance as for the model's own gradients (model/llama_batch_test.cc): f32 forward,
// h = 1e-3, so 1e-3 + 1e-2·|g|.
TEST(Lora, EveryAdapterGradientMatchesCentralDifferences) {
  for (const double dropout : {0.0, 0.3}) {
    Problem p(dropout);
    p.Loss(true);
    size_t checked = 0, nonzero = 0;
    for (const model::ParamEntry& e : p.index.entries()) {
      for (size_t k = 0; k < e.count; k += 3) {
        float& x = p.params[e.offset + k];
        const float keep = x;
        x = keep + 1e-3f;
        const double up = p.Loss(false);
        x = keep - 1e-3f;
        const double down = p.Loss(false);
        x = keep;
        const double num = (up - down) / 2e-3;
        ASSERT_NEAR(p.grads[e.offset + k], num, 1e-3 + 1e-2 * std::fabs(num)) << e.name << "[" << k << "]";
        ++checked;
        nonzero += std::fabs(num) > 1e-3;
      }
    }
    EXPECT_GT(checked, 500u);
    EXPECT_GT(nonzero, checked / 2);
  }
}

TEST(Lora, DropoutIsCounterBasedAndKeepsOneMinusP) {
  LoraLinear ad(64, 8, 4, 1.0f, 0.25f, 99);
  size_t kept = 0, same = 0, n = 0;
  for (size_t row = 0; row < 64; ++row)
    for (size_t col = 0; col < 64; ++col, ++n) {
      kept += ad.Keep(5, row, col);
      same += ad.Keep(5, row, col) == ad.Keep(6, row, col);
      ASSERT_EQ(ad.Keep(5, row, col), ad.Keep(5, row, col));
    }
  EXPECT_NEAR(static_cast<double>(kept) / n, 0.75, 0.03);   // 4096 draws: σ ≈ 0.007
  EXPECT_NEAR(static_cast<double>(same) / n, 0.625, 0.03);  // independent masks agree with p² + q²
}

// merge: the merged dense weight gives the adapter's outputs (within f32 rounding of the
// two paths), and unmerge restores W to within one rounding of |W| + |ΔW|.
TEST(Lora, MergeAndUnmerge) {
  Problem p(0.0);
  model::LlamaWeights w = p.base;
  p.lora->Attach(p.index, p.params.data(), nullptr, w);
  Allocator alloc;
  const LinearCall call{1, &alloc};
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (size_t i = 0; i < p.lora->adapters().size(); ++i) {
    const LoraLinear& ad = *p.lora->adapters()[i];
    const model::LinearWeight& lin = *p.lora->targets()[i].Linear(w);
    const size_t in = ad.in(), out = ad.out(), M = 3;
    std::vector<float> merged(static_cast<const float*>(lin.dense.data),
                              static_cast<const float*>(lin.dense.data) + in * out);
    const std::vector<float> original = merged;
    LoraModel::Merge(ad, merged.data());
    std::vector<float> x(M * in), y1(M * out), y2(M * out);
    for (float& v : x) v = d(rng);
    model::LinearForward(call, lin, x.data(), y1.data(), M);
    model::LinearForward(call, model::LinearWeight{ConstTensorView{merged.data(), DType::kF32, lin.dense.shape}},
                         x.data(), y2.data(), M);
    for (size_t k = 0; k < y1.size(); ++k) ASSERT_NEAR(y1[k], y2[k], 1e-5f * (1 + std::fabs(y1[k])));
    LoraModel::Merge(ad, merged.data(), /*unmerge=*/true);
    for (size_t k = 0; k < merged.size(); ++k) ASSERT_NEAR(merged[k], original[k], 2e-7f * (std::fabs(original[k]) + 4));
  }
}

}  // namespace
}  // namespace nibble::peft
