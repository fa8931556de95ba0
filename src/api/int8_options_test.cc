// The load options --int8-activations and --int8-classifier through the loader and the
// model: which layers they switch, that the forward pass uses them (logits change), and
// that they stay close to the default path. The kernels themselves are checked against
// their definitions in src/quant/qgemv4_i8_test.cc and the LLM.int8() tests; here the
// model-level bound is statistical: mean KL divergence and top-1 agreement over every
// position of a fixed 48-token sequence on stories260K (measured: classifier 5.8e-4 /
// 100 %, activations 1.3e-3 / 97.9 %, printed by the tests; the bounds 4e-3 / 90 % leave
// 3x and a few positions of room, while a wrong scale or a misrouted classifier moves the
// KLD by orders of magnitude).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "api/model_loader.h"
#include "core/cpu_features.h"
#include "model/kv_cache.h"
#include "nibble/quantize.h"
#include "quant/qgemv4_i8.h"
#include "quant/registry.h"
#include "util/cpu_cap.h"
#include "util/logit_stats.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::api {
namespace {

constexpr int64_t kT = 48;

std::vector<float> AllLogits(const LoadedModel& m, ExecContext& ctx) {
  std::vector<int32_t> tokens(kT);
  for (int64_t t = 0; t < kT; ++t) tokens[t] = static_cast<int32_t>((t * 37 + 11) % m.config.vocab_size);
  tokens[0] = 1;  // BOS
  model::KvCache cache(ctx.allocator(), m.config, kT);
  std::vector<float> logits(static_cast<size_t>(kT * m.config.vocab_size));
  m.model->Forward(ctx, cache, tokens, 0, logits, model::LogitsMode::kAll);
  return logits;
}

struct Agreement {
  double mean_kld, top1, max_abs;
};

Agreement Compare(const std::vector<float>& base, const std::vector<float>& other, int64_t V) {
  const auto v = static_cast<size_t>(V);
  return {test::MeanKld(base, other, v), test::Top1Agreement(base, other, v), test::MaxAbsDiff(base, other)};
}

TEST(Int8Options, ClassifierQuantizedAtLoadAndUsed) {
  ExecContext ctx(2);
  LoadOptions lo;
  lo.load_tokenizer = false;
  const std::string path = test::SharedData("llama2c-stories260K/stories260K.bin");
  const auto dense = LoadModel(path, lo, ctx);
  lo.int8_classifier = true;
  const auto q = LoadModel(path, lo, ctx);
  const quant::QTensor* cls = q->model->weights().classifier_q;
  ASSERT_NE(cls, nullptr);
  EXPECT_EQ(cls->method, quant::QuantMethod::kLlmInt8);
  EXPECT_EQ(cls->threshold, 0.0f);
  EXPECT_EQ(cls->shape, dense->model->weights().Classifier(dense->config).shape());
  EXPECT_EQ(dense->model->weights().classifier_q, nullptr);
  const int64_t V = dense->config.vocab_size;
  const std::vector<float> a = AllLogits(*dense, ctx), b = AllLogits(*q, ctx);
  const Agreement g = Compare(a, b, V);
  std::printf("int8 classifier vs dense: mean KLD %.3g, top-1 %.3f, max |dlogit| %.3g\n", g.mean_kld, g.top1, g.max_abs);
  EXPECT_GT(g.max_abs, 0.0) << "the quantized classifier was not used";
  EXPECT_LT(g.mean_kld, 4e-3);
  EXPECT_GE(g.top1, 0.9);
}

// An untied checkpoint whose lm_head is quantized already: --int8-classifier keeps it as
// stored, says so, and the model runs (it read an empty dense view before).
TEST(Int8Options, ClassifierAlreadyQuantizedIsKept) {
  test::TempDir dir;
  QuantizeOptions qo;
  qo.method = "nf4";
  qo.skip_modules = {};
  const std::string out = dir.File("nf4-head");
  Quantize(test::SharedData("hf-tiny-random-llama"), out, qo);
  ExecContext ctx(2);
  LoadOptions lo;
  lo.load_tokenizer = false;
  lo.int8_classifier = true;
  const auto m = LoadModel(out, lo, ctx);
  ASSERT_FALSE(m->config.tie_word_embeddings);
  ASSERT_NE(m->model->weights().lm_head.q, nullptr);
  EXPECT_EQ(m->model->weights().classifier_q, nullptr);
  EXPECT_TRUE(m->classifier_was_quantized);
  const std::vector<std::string> w = Int8OptionWarnings(*m, lo);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("lm_head is already quantized"), std::string::npos) << w[0];
  const std::vector<float> logits = AllLogits(*m, ctx);
  EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float v) { return std::isfinite(v); }));
}

TEST(Int8Options, ActivationsSwitchEverySupported4BitLayer) {
  test::TempDir dir;
  QuantizeOptions qo;
  qo.method = "nf4";
  const std::string out = dir.File("nf4");
  Quantize(test::SharedData("llama2c-stories260K/stories260K.bin"), out, qo);
  ExecContext ctx(2);
  LoadOptions lo;
  lo.load_tokenizer = false;
  const auto plain = LoadModel(out, lo, ctx);
  lo.int8_activations = true;
  const auto i8 = LoadModel(out, lo, ctx);
  // stories260K: dim 64, hidden 172: every projection but down_proj (K = 172) qualifies.
  // The QTensors stay frozen; the model's call policy carries the option.
  int64_t supported = 0;
  for (const auto& t : i8->quantized) supported += quant::SupportsInt8Activations(*t) ? 1 : 0;
  EXPECT_EQ(supported, 6 * plain->config.num_hidden_layers);
  EXPECT_EQ(i8->int8_activation_layers, supported);
  EXPECT_TRUE(i8->model->quant_policy().int8_activations);
  EXPECT_FALSE(plain->model->quant_policy().int8_activations);
  EXPECT_EQ(plain->int8_activation_layers, 0);
  // The warning follows the kernel that would run (the effective CPU level: detected,
  // then capped), never the CPU model: checked under every cap this process may use.
  test::ForEachCap([&] {
    if (quant::ChooseInt8ActivationsPath() != quant::Int8ActivationsPath::kRef) {
      EXPECT_TRUE(Int8OptionWarnings(*i8, lo).empty());
    } else {
      ASSERT_EQ(Int8OptionWarnings(*i8, lo).size(), 1u);  // the scalar-reference warning
      EXPECT_NE(Int8OptionWarnings(*i8, lo)[0].find("scalar reference"), std::string::npos);
    }
  });
  // A dense model: the activations option warns that there is nothing to switch, also
  // when --int8-classifier adds its one quantized matrix.
  lo.int8_classifier = true;
  const auto dense = LoadModel(test::SharedData("llama2c-stories260K/stories260K.bin"), lo, ctx);
  const std::vector<std::string> w = Int8OptionWarnings(*dense, lo);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("the model has no quantized layers"), std::string::npos) << w[0];
  lo.int8_classifier = false;

  const int64_t V = plain->config.vocab_size;
  const std::vector<float> a = AllLogits(*plain, ctx), b = AllLogits(*i8, ctx);
  const Agreement g = Compare(a, b, V);
  std::printf("int8 activations vs NF4 default: mean KLD %.3g, top-1 %.3f, max |dlogit| %.3g\n", g.mean_kld, g.top1,
              g.max_abs);
  EXPECT_GT(g.max_abs, 0.0) << "the int8-activation path was not used";
  EXPECT_LT(g.mean_kld, 4e-3);
  EXPECT_GE(g.top1, 0.9);
}

}  // namespace
}  // namespace nibble::api
