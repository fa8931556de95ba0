// The training step's bookkeeping: gradient accumulation equals one large batch (the loss
// normalised over every counted token of the step), the text windows and their order, and
// the option errors.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "model/kv_cache.h"
#include "model/tiny_llama_testing.h"
#include "nibble/error.h"

namespace nibble::train {
namespace {

struct Tiny {
  model::LlamaConfig c = model::testing::TinyConfig();
  model::testing::RandomWeights rw;
  std::unique_ptr<model::LlamaModel> m;
  Tiny() { m = std::make_unique<model::LlamaModel>(c, rw.Build(c)); }
};

TrainConfig Config(Method method, size_t batch, int64_t accum) {
  TrainConfig t;
  t.method = method;
  t.seq_len = 8;
  t.batch_size = batch;
  t.grad_accum = accum;
  t.max_steps = 5;
  t.lr = 1e-2;
  t.weight_decay = 0.1;
  t.lora.r = 2;
  t.lora.target_modules = {"q_proj", "down_proj"};
  t.lora.init = peft::LoraInit::kNone;
  return t;
}

// Two micro-batches of 2 against one of 4 on the same rows, with unequal ignored targets
// in the two halves (so a per-micro-batch mean would weigh them differently): the same
// losses and gradient norms over three steps, and then the same gradients, to f32
// rounding (1e-5 relative). (Parameters are not compared: Adam's m/√v turns the rounding
// noise of gradients near zero into whole-size updates.)
TEST(Trainer, GradientAccumulationEqualsOneLargeBatch) {
  for (const Method method : {Method::kFull, Method::kLora}) {
    Tiny tiny;
    ExecContext ctx(2);
    Trainer one(*tiny.m, Config(method, 4, 1), ctx);
    Trainer two(*tiny.m, Config(method, 2, 2), ctx);
    std::mt19937 rng(1);
    for (int step = 0; step < 3; ++step) {
      std::vector<int32_t> tokens(32), targets(32);
      for (size_t i = 0; i < 32; ++i) {
        tokens[i] = static_cast<int32_t>(rng() % 40);
        targets[i] = i < 16 && i % 3 == 0 ? kIgnoreIndex : static_cast<int32_t>(rng() % 40);
      }
      const StepResult a = one.Step(tokens, targets), b = two.Step(tokens, targets);
      EXPECT_EQ(a.tokens, b.tokens);
      EXPECT_NEAR(a.loss, b.loss, 1e-5 * a.loss);
      EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-5 * a.grad_norm);
    }
    Trainer fresh_one(*tiny.m, Config(method, 4, 1), ctx);
    Trainer fresh_two(*tiny.m, Config(method, 2, 2), ctx);
    std::vector<int32_t> tokens(32), targets(32);
    for (size_t i = 0; i < 32; ++i) {
      tokens[i] = static_cast<int32_t>(rng() % 40);
      targets[i] = i >= 16 && i % 2 == 0 ? kIgnoreIndex : static_cast<int32_t>(rng() % 40);
    }
    size_t n1 = 0, n2 = 0;
    fresh_one.ComputeGradients(tokens, targets, &n1);
    fresh_two.ComputeGradients(tokens, targets, &n2);
    ASSERT_EQ(n1, n2);
    float scale = 0;
    for (size_t i = 0; i < fresh_one.index().total(); ++i) scale = std::max(scale, std::fabs(fresh_one.grads()[i]));
    for (size_t i = 0; i < fresh_one.index().total(); ++i)
      ASSERT_NEAR(fresh_one.grads()[i], fresh_two.grads()[i], 1e-5f * scale) << i;
  }
}

TEST(Trainer, LoraTrainsOnlyAdaptersAndFullTrainsEverything) {
  Tiny tiny;
  ExecContext ctx(1);
  const Trainer lora(*tiny.m, Config(Method::kLora, 1, 1), ctx);
  EXPECT_EQ(lora.index().entries().size(), 8u);  // q_proj and down_proj in 2 layers, A and B each
  EXPECT_EQ(lora.num_trainable(), 2 * (2 * 32 + 32 * 2) + 2 * (2 * 48 + 32 * 2));  // q: A [2, 32], B [32, 2]; down: A [2, 48], B [32, 2]
  const Trainer full(*tiny.m, Config(Method::kFull, 1, 1), ctx);
  size_t all = 0, decayed = 0;
  model::ForEachRole(tiny.c, [&](const model::RoleAt& r) { all += static_cast<size_t>(r.role->ShapeIn(tiny.c).NumElems()); });
  for (const model::ParamEntry& e : full.index().entries()) {
    decayed += e.decay;
    EXPECT_EQ(e.decay, e.name.find("norm") == std::string::npos && e.name.find("bias") == std::string::npos) << e.name;
  }
  EXPECT_EQ(full.num_trainable(), all);
  EXPECT_EQ(decayed, 1 + 2 * 7 + 1u);  // embed, 7 Linears per layer, lm_head
  const TrainMemory m = full.memory();
  EXPECT_EQ(m.optimizer, 2 * m.gradients);  // m and v
  EXPECT_GE(m.weights, all * 4);
  EXPECT_GT(m.activations, 0u);
  EXPECT_EQ(m.logits, 8u * 40 * 4);
}

TEST(Trainer, OptionErrorsNameTheOption) {
  Tiny tiny;
  ExecContext ctx(1);
  auto message = [&](TrainConfig c) {
    try {
      Trainer t(*tiny.m, c, ctx);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  TrainConfig c = Config(Method::kFull, 1, 1);
  c.seq_len = 65;
  EXPECT_NE(message(c).find("exceeds the model's context of 64"), std::string::npos) << message(c);
  c = Config(Method::kLora, 1, 1);
  c.lora.target_modules = {"c_attn"};
  EXPECT_NE(message(c).find("'c_attn' matches no Linear"), std::string::npos) << message(c);
  c = Config(Method::kFull, 1, 1);
  c.lr = -1;
  EXPECT_NE(message(c).find("'lr'"), std::string::npos);
  EXPECT_THROW(ParseMethod("qlora2"), ConfigError);
  EXPECT_EQ(ParseMethod("lora"), Method::kLora);
}

TEST(Trainer, NonFiniteLossStopsBeforeTheUpdateNamingTheStep) {
  Tiny tiny;
  ExecContext ctx(1);
  TrainConfig c = Config(Method::kFull, 1, 1);
  c.lr = 1e30;  // the first update blows the weights up; the second loss is not finite
  c.max_grad_norm = 0;
  c.schedule = optim::LrSchedule::kConstant;
  Trainer t(*tiny.m, c, ctx);
  std::vector<int32_t> tokens(8, 3), targets(8, 5);
  t.Step(tokens, targets);
  std::vector<float> before(t.params(), t.params() + t.index().total());
  try {
    for (int i = 0; i < 3; ++i) t.Step(tokens, targets);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("step 2: the loss is"), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.step(), 1);
  EXPECT_EQ(std::memcmp(before.data(), t.params(), before.size() * sizeof(float)), 0);
}

// EvaluateLoss against the inference forward (LlamaModel::Forward, every position's logits)
// and the cross-entropy summed in double: 3 windows of 8, some targets ignored. Tolerance
// 1e-5 relative: both sides run the same f32 kernels; only the loss sums differ (f32 per
// row in the kernel, double here).
TEST(EvaluateLoss, EqualsTheInferenceForwardsMeanNll) {
  Tiny t;
  ExecContext ctx(2);
  const size_t T = 8, W = 3;
  std::mt19937 rng(5);
  std::vector<int32_t> tokens(W * T), targets(W * T);
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>(rng() % static_cast<uint32_t>(t.c.vocab_size));
    targets[i] = i % 5 == 3 ? kIgnoreIndex : static_cast<int32_t>(rng() % static_cast<uint32_t>(t.c.vocab_size));
  }
  const auto V = static_cast<size_t>(t.c.vocab_size);
  double sum = 0;
  size_t n = 0;
  for (size_t w = 0; w < W; ++w) {
    model::KvCache cache(ctx.allocator(), t.c, static_cast<int64_t>(T));
    std::vector<float> logits(T * V);
    t.m->Forward(ctx, cache, std::span(tokens).subspan(w * T, T), 0, logits, model::LogitsMode::kAll);
    for (size_t r = 0; r < T; ++r) {
      const int32_t y = targets[w * T + r];
      if (y == kIgnoreIndex) continue;
      double mx = -INFINITY, z = 0;
      for (size_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(logits[r * V + v]));
      for (size_t v = 0; v < V; ++v) z += std::exp(logits[r * V + v] - mx);
      sum += mx + std::log(z) - logits[r * V + static_cast<size_t>(y)];
      ++n;
    }
  }
  const double want = sum / static_cast<double>(n);
  EXPECT_NEAR(EvaluateLoss(*t.m, tokens, targets, 1, T, ctx), want, 1e-5 * want);
  EXPECT_NEAR(EvaluateLoss(*t.m, tokens, targets, 3, T, ctx), want, 1e-5 * want);
  // A partial batch is left out: one window does not fill a batch of two.
  EXPECT_EQ(EvaluateLoss(*t.m, std::span(tokens).first(T), std::span(targets).first(T), 2, T, ctx), 0.0);
}

// A right-padded batch (padding tokens arbitrary, their targets ignored) gives the
// gradients of its sequences run unpadded, each at its own length: causal attention keeps
// padding out of the real positions. Two sequences of 8 and 5 tokens in one 2×8 batch
// against micro-batches of 1×8 and 1×5; f32 rounding (1e-5 of the largest gradient).
TEST(Trainer, PaddedBatchEqualsItsSequencesUnpadded) {
  for (const Method method : {Method::kFull, Method::kLora}) {
    Tiny tiny;
    ExecContext ctx(2);
    Trainer padded(*tiny.m, Config(method, 2, 1), ctx);
    Trainer separate(*tiny.m, Config(method, 2, 2), ctx);
    std::mt19937 rng(5);
    std::vector<int32_t> a(8), ta(8), b(5), tb(5);
    for (auto* v : {&a, &ta, &b, &tb})
      for (int32_t& x : *v) x = static_cast<int32_t>(rng() % 40);
    ta[0] = kIgnoreIndex;
    std::vector<int32_t> tokens(a), targets(ta);
    tokens.insert(tokens.end(), b.begin(), b.end());
    targets.insert(targets.end(), tb.begin(), tb.end());
    for (int i = 0; i < 3; ++i) {
      tokens.push_back(39 - i);  // padding: any token
      targets.push_back(kIgnoreIndex);
    }
    size_t n1 = 0, n2 = 0;
    const TokenBatch one[] = {{tokens, targets, 2, 8}};
    const TokenBatch two[] = {{a, ta, 1, 8}, {b, tb, 1, 5}};
    const double l1 = padded.ComputeGradients(one, &n1), l2 = separate.ComputeGradients(two, &n2);
    ASSERT_EQ(n1, 12u);
    ASSERT_EQ(n2, 12u);
    EXPECT_NEAR(l1, l2, 1e-6 * l1);
    float scale = 0;
    for (size_t i = 0; i < padded.index().total(); ++i) scale = std::max(scale, std::fabs(padded.grads()[i]));
    ASSERT_GT(scale, 0);
    for (size_t i = 0; i < padded.index().total(); ++i)
      ASSERT_NEAR(padded.grads()[i], separate.grads()[i], 1e-5f * scale) << i;
  }
}

// Restore puts a fresh trainer where another left off: the next steps are bit-identical.
TEST(Trainer, RestoreContinuesBitForBit) {
  for (const Method method : {Method::kFull, Method::kLora}) {
    Tiny tiny;
    ExecContext ctx(2);
    TrainConfig cfg = Config(method, 2, 1);
    cfg.lora.lora_dropout = 0.25;  // the masks depend on the step counter, which Restore sets
    Trainer a(*tiny.m, cfg, ctx), b(*tiny.m, cfg, ctx);
    std::mt19937 rng(9);
    std::vector<std::vector<int32_t>> batches(5, std::vector<int32_t>(16));
    for (auto& v : batches)
      for (int32_t& x : v) x = static_cast<int32_t>(rng() % 40);
    for (int s = 0; s < 2; ++s) a.Step(batches[s], batches[s + 1]);
    b.Restore(a.step(), a.params());
    b.mutable_optimizer().CopyFrom(a.optimizer());
    for (int s = 2; s < 4; ++s) {
      const StepResult ra = a.Step(batches[s], batches[s + 1]), rb = b.Step(batches[s], batches[s + 1]);
      EXPECT_EQ(ra.step, rb.step);
      EXPECT_EQ(ra.loss, rb.loss);
      EXPECT_EQ(ra.grad_norm, rb.grad_norm);
      EXPECT_EQ(ra.lr, rb.lr);
    }
    EXPECT_EQ(std::memcmp(a.params(), b.params(), a.index().total() * sizeof(float)), 0);
  }
}

// Gradient checkpointing recomputes each layer in backward from its kept input, with the
// same dropout masks: every loss, gradient and parameter equals the run that keeps all
// activations bit for bit (full fine-tuning, and LoRA with dropout), with the activation
// buffer the formula gives, smaller by (L − 1) layers' inner activations.
TEST(Trainer, GradientCheckpointingIsBitIdenticalAndKeepsLess) {
  for (const Method method : {Method::kFull, Method::kLora}) {
    Tiny tiny;
    ExecContext ctx(2);
    TrainConfig cfg = Config(method, 2, 2);
    cfg.lora.lora_dropout = 0.25;
    TrainConfig ck = cfg;
    ck.gradient_checkpointing = true;
    Trainer a(*tiny.m, cfg, ctx), b(*tiny.m, ck, ctx);
    std::mt19937 rng(5);
    for (int s = 0; s < 3; ++s) {
      std::vector<int32_t> tokens(32), targets(32);
      for (size_t i = 0; i < 32; ++i) {
        tokens[i] = static_cast<int32_t>(rng() % 40);
        targets[i] = static_cast<int32_t>(rng() % 40);
      }
      const StepResult ra = a.Step(tokens, targets), rb = b.Step(tokens, targets);
      EXPECT_EQ(ra.loss, rb.loss) << "step " << s;
      EXPECT_EQ(ra.grad_norm, rb.grad_norm) << "step " << s;
      EXPECT_EQ(std::memcmp(a.grads(), b.grads(), a.index().total() * sizeof(float)), 0) << "step " << s;
    }
    EXPECT_EQ(std::memcmp(a.params(), b.params(), a.index().total() * sizeof(float)), 0);
    const model::LlamaConfig& c = tiny.c;
    const size_t N = 2 * 8, L = static_cast<size_t>(c.num_hidden_layers);
    const size_t inner = N * (2 * c.hidden_size + 2 * c.QDim() + 2 * c.KvDim() + 3 * c.intermediate_size +
                              c.hidden_size);
    ASSERT_GE(L, 2u);
    EXPECT_EQ(a.memory().activations - b.memory().activations, (L - 1) * inner * sizeof(float));
    EXPECT_EQ(b.memory().activations,
              model::BatchActivations::ActivationFloats(c, {2, 8, 0}, 2, true) * sizeof(float));
  }
}

}  // namespace
}  // namespace nibble::train
