// The training core against PyTorch + transformers + PEFT (tests/golden/train, made by
// scripts/goldens/make_train_goldens.py; versions in VERSIONS.txt) on
// ../shared/data/hf-tiny-random-llama: the loss, every full-fine-tuning gradient, every
// LoRA A and B gradient (all-linear, init_lora_weights=False), and 10 AdamW steps of
// each with a warmup schedule, clipping and grouped weight decay.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/model_loader.h"
#include "io/safetensors.h"
#include "train/trainer.h"
#include "util/test_paths.h"

namespace nibble::api {
namespace {

constexpr size_t kB = 2, kT = 12;

nlohmann::json Info() {
  std::ifstream f(test::Golden("train/train.json"));
  return nlohmann::json::parse(f);
}

std::span<const float> F32s(const io::SafetensorsTensor& t) {
  return {reinterpret_cast<const float*>(t.data.data()), t.data.size() / 4};
}
std::span<const int32_t> I32s(const io::SafetensorsTensor& t) {
  return {reinterpret_cast<const int32_t*>(t.data.data()), t.data.size() / 4};
}

// Batch k of the golden's token stream and its shifted targets (transformers' labels).
void Batch(const nlohmann::json& info, size_t k, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  const std::vector<int32_t> all = info["tokens"].get<std::vector<int32_t>>();
  tokens.assign(all.begin() + static_cast<long>(k * kB * kT), all.begin() + static_cast<long>((k + 1) * kB * kT));
  targets.resize(tokens.size());
  for (size_t b = 0; b < kB; ++b)
    for (size_t t = 0; t < kT; ++t)
      targets[b * kT + t] = t + 1 < kT ? tokens[b * kT + t + 1] : train::kIgnoreIndex;
}

struct Fixture {
  ExecContext ctx{2};
  std::unique_ptr<LoadedModel> loaded;
  Fixture() {
    LoadOptions lo;
    lo.load_tokenizer = false;
    lo.weights = WeightDtype::kF32;
    loaded = LoadModel(test::SharedData("hf-tiny-random-llama"), lo, ctx);
  }
  train::TrainConfig Config(train::Method method, double lr, double wd) const {
    train::TrainConfig c;
    c.method = method;
    c.seq_len = kT;
    c.batch_size = kB;
    c.max_steps = 10;
    c.lr = lr;
    c.warmup_steps = 3;
    c.weight_decay = wd;
    c.lora.r = 4;
    c.lora.lora_alpha = 8;
    c.lora.target_modules = {"all-linear"};
    c.lora.init = peft::LoraInit::kNone;
    return c;
  }
  // Loads the golden's initial adapter into the trainer, by PEFT's names.
  static void LoadLoraInit(train::Trainer& tr) {
    const io::SafetensorsFile init = io::SafetensorsFile::Open(test::Golden("train/lora_init.safetensors"));
    ASSERT_EQ(init.tensors().size(), tr.index().entries().size());
    for (const model::ParamEntry& e : tr.index().entries()) {
      const io::SafetensorsTensor* t = init.FindTensor(e.name);
      ASSERT_NE(t, nullptr) << e.name;
      ASSERT_EQ(t->shape, e.shape) << e.name;
      std::copy_n(F32s(*t).data(), e.count, tr.mutable_params() + e.offset);
    }
  }
};

// |nibble − torch| <= 2e-5·max|g_tensor| + 1e-9 per element. Both sides sum in f32 in
// different orders over at most 2·12 tokens and 64 features per GEMM; the log-softmax
// over 32000 logits costs ~1e-6 relative. A wrong factor or transpose misses by O(1).
void ExpectGradClose(std::span<const float> got, std::span<const float> want, const std::string& name) {
  ASSERT_EQ(got.size(), want.size()) << name;
  float scale = 0;
  for (float w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 2e-5f * scale + 1e-9f) << name << "[" << i << "] (max |g| " << scale << ")";
}

TEST(TrainGolden, FullFineTuningGradientsMatchPyTorch) {
  Fixture fx;
  const nlohmann::json info = Info();
  train::Trainer tr(*fx.loaded->model, fx.Config(train::Method::kFull, 1e-3, 0.1), fx.ctx);
  std::vector<int32_t> tokens, targets;
  Batch(info, 0, tokens, targets);
  size_t counted = 0;
  const double loss = tr.ComputeGradients(tokens, targets, &counted);
  EXPECT_EQ(counted, kB * (kT - 1));
  EXPECT_NEAR(loss, info["full_loss"].get<double>(), 2e-5);  // f32 logsumexp over 32000 logits, ~1e-6
  const io::SafetensorsFile g = io::SafetensorsFile::Open(test::Golden("train/full_grads.safetensors"));
  size_t compared = 0;
  for (const model::ParamEntry& e : tr.index().entries()) {
    const std::span<const float> mine(tr.grads() + e.offset, e.count);
    if (e.name == "model.embed_tokens.weight") {
      const std::span<const int32_t> rows = I32s(*g.FindTensor(e.name + ".row_ids"));
      const std::span<const float> want = F32s(*g.FindTensor(e.name + ".rows"));
      const size_t D = static_cast<size_t>(e.shape[1]);
      std::vector<float> got;
      double norm = 0;
      for (float x : mine) norm += double(x) * x;
      for (int32_t r : rows) got.insert(got.end(), mine.begin() + r * D, mine.begin() + (r + 1) * D);
      ExpectGradClose(got, want, e.name);
      EXPECT_NEAR(std::sqrt(norm), info["embed_grad_norm"].get<double>(), 1e-5 * std::sqrt(norm));  // other rows 0
    } else if (e.name == "lm_head.weight") {
      const std::span<const int32_t> ids = I32s(*g.FindTensor(e.name + ".sample_ids"));
      std::vector<float> got;
      double norm = 0;
      for (float x : mine) norm += double(x) * x;
      for (int32_t i : ids) got.push_back(mine[static_cast<size_t>(i)]);
      ExpectGradClose(got, F32s(*g.FindTensor(e.name + ".samples")), e.name);
      EXPECT_NEAR(std::sqrt(norm), info["lm_head_grad_norm"].get<double>(), 1e-5 * std::sqrt(norm));
    } else {
      const io::SafetensorsTensor* t = g.FindTensor(e.name);
      ASSERT_NE(t, nullptr) << e.name;
      ExpectGradClose(mine, F32s(*t), e.name);
    }
    ++compared;
  }
  EXPECT_EQ(compared, 21u);  // embed, 2 x 9 per layer, norm, lm_head
}

TEST(TrainGolden, LoraGradientsMatchPeft) {
  Fixture fx;
  const nlohmann::json info = Info();
  train::Trainer tr(*fx.loaded->model, fx.Config(train::Method::kLora, 1e-2, 0.0), fx.ctx);
  Fixture::LoadLoraInit(tr);
  std::vector<int32_t> tokens, targets;
  Batch(info, 0, tokens, targets);
  size_t counted = 0;
  const double loss = tr.ComputeGradients(tokens, targets, &counted);
  EXPECT_NEAR(loss, info["lora_loss"].get<double>(), 2e-5);
  const io::SafetensorsFile g = io::SafetensorsFile::Open(test::Golden("train/lora_grads.safetensors"));
  ASSERT_EQ(tr.index().entries().size(), 28u);  // A and B of 7 Linears x 2 layers
  for (const model::ParamEntry& e : tr.index().entries()) {
    const io::SafetensorsTensor* t = g.FindTensor(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    ExpectGradClose(std::span(tr.grads() + e.offset, e.count), F32s(*t), e.name);
  }
}

// Ten steps, each on its own batch. The rates must agree to double rounding; the losses
// and pre-clip norms drift apart only by the f32 differences of the updates (~1e-6
// relative per step on parameters of ~1e-2): within 1e-4 absolute on losses of ~10.4 and
// 1e-4 relative on the norms.
void ExpectTrajectory(train::Trainer& tr, const nlohmann::json& info, const nlohmann::json& want) {
  for (size_t k = 0; k < 10; ++k) {
    std::vector<int32_t> tokens, targets;
    Batch(info, 1 + k, tokens, targets);
    const train::StepResult r = tr.Step(tokens, targets);
    EXPECT_NEAR(r.lr, want["lrs"][k].get<double>(), 1e-12) << "step " << k + 1;
    EXPECT_NEAR(r.loss, want["losses"][k].get<double>(), 1e-4) << "step " << k + 1;
    const double norm = want["grad_norms"][k].get<double>();
    EXPECT_NEAR(r.grad_norm, norm, 1e-4 * norm) << "step " << k + 1;
  }
}

TEST(TrainGolden, FullFineTuningTrajectoryMatchesPyTorch) {
  Fixture fx;
  const nlohmann::json info = Info();
  train::Trainer tr(*fx.loaded->model, fx.Config(train::Method::kFull, 1e-3, 0.1), fx.ctx);
  ExpectTrajectory(tr, info, info["full"]);
}

TEST(TrainGolden, LoraTrajectoryMatchesPeft) {
  Fixture fx;
  const nlohmann::json info = Info();
  train::Trainer tr(*fx.loaded->model, fx.Config(train::Method::kLora, 1e-2, 0.0), fx.ctx);
  Fixture::LoadLoraInit(tr);
  ExpectTrajectory(tr, info, info["lora"]);
}

}  // namespace
}  // namespace nibble::api
