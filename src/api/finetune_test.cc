// `nibble finetune` end to end on stories260K with Tiny Shakespeare (the issue's "done
// when"): LoRA and full fine-tuning lower the training loss within 40 steps, and what they
// write loads back (the adapter through the PEFT reader, the model through LoadModel) and
// scores the text better than the base model. Plus the errors a user meets first.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/model_loader.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "nibble/finetune.h"
#include "train/adapter_io.h"
#include "train/trainer.h"
#include "util/test_paths.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;

const std::string kModel = "llama2c-stories260K/stories260K.bin";
const std::string kText = "text-tinyshakespeare/input.txt";

FinetuneOptions Options(const std::string& method, const std::string& out) {
  FinetuneOptions o;
  o.model_path = test::SharedData(kModel);
  o.text_path = test::SharedData(kText);
  o.out_dir = out;
  o.method = method;
  o.seq_len = 32;  // 4 x 32 tokens a step keeps the test quick under the sanitizers
  o.batch_size = 4;
  o.max_steps = 40;
  o.lr = method == "full" ? 2e-3 : 1e-2;
  o.target_modules = {"all-linear"};
  o.num_threads = 2;
  return o;
}

std::string TempDir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / fs::path("nibble-ft-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

// The mean loss of `m` (with whatever adapters its weights carry) over the first 8 windows
// of the text, as evaluation (no dropout).
double EvalLoss(const model::LlamaModel& m, const tokenizer::Tokenizer& tok) {
  const std::string text = io::ReadRegularFile(test::SharedData(kText), "text", io::kMaxTextFileBytes);
  const train::PackedText data(tok.Encode(text, true, false), 64, "text");
  std::vector<int32_t> tokens(8 * 64), targets(8 * 64);
  for (size_t w = 0; w < 8; ++w) data.Fill(w, tokens.data() + w * 64, targets.data() + w * 64);
  ExecContext ctx(2);
  return train::EvaluateLoss(m, tokens, targets, 8, 64, ctx);
}

std::vector<double> Losses(const std::string& dir) {
  std::ifstream f(fs::path(dir) / "metrics.jsonl");
  std::vector<double> l;
  for (std::string line; std::getline(f, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    for (const char* key : {"step", "loss", "learning_rate", "grad_norm", "epoch"}) EXPECT_TRUE(j.contains(key)) << key;
    l.push_back(j["loss"].get<double>());
  }
  return l;
}

double Mean(const std::vector<double>& v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s / static_cast<double>(end - begin);
}

TEST(Finetune, LoraLowersTheLossAndItsAdapterLoadsBack) {
  const std::string out = TempDir("lora");
  const FinetuneReport r = Finetune(Options("lora", out));
  const std::vector<double> losses = Losses(out);
  ASSERT_EQ(losses.size(), 40u);
  // The loss starts near 4.2 on this text (the model knows TinyStories, not Shakespeare);
  // 40 steps take the mean of the last five below the first five by more than 0.4
  // (measured: 0.70 for LoRA, 0.63 for full fine-tuning).
  EXPECT_LT(Mean(losses, 35, 40), Mean(losses, 0, 5) - 0.4);
  EXPECT_EQ(r.steps, 40);
  EXPECT_GT(r.trainable_params, 0u);

  ExecContext ctx(2);
  api::LoadOptions lo;
  const auto base = api::LoadModel(test::SharedData(kModel), lo, ctx);
  const peft::LoraConfig lc = train::ReadLoraConfig(out);
  EXPECT_EQ(lc.r, 8);
  EXPECT_EQ(lc.target_modules.size(), 7u);  // all-linear, saved as the explicit list
  model::ParamIndex index;
  const peft::LoraModel lora(base->config, lc, index, 0);
  std::vector<float> params(index.total(), 0.0f);
  train::ReadLoraWeights(out, index, params.data());
  model::LlamaWeights w = base->model->weights();
  lora.Attach(index, params.data(), nullptr, w);
  const model::LlamaModel tuned(base->config, w);
  const double before = EvalLoss(*base->model, *base->tokenizer), after = EvalLoss(tuned, *base->tokenizer);
  EXPECT_LT(after, before - 0.3) << before << " -> " << after;
  fs::remove_all(out);
}

TEST(Finetune, FullLowersTheLossAndItsModelLoadsBack) {
  const std::string out = TempDir("full");
  Finetune(Options("full", out));
  const std::vector<double> losses = Losses(out);
  ASSERT_EQ(losses.size(), 40u);
  EXPECT_LT(Mean(losses, 35, 40), Mean(losses, 0, 5) - 0.4);
  ExecContext ctx(2);
  api::LoadOptions lo;
  const auto base = api::LoadModel(test::SharedData(kModel), lo, ctx);
  const auto tuned = api::LoadModel(out, lo, ctx);  // HF layout: rotate-half rows, config.json, tokenizer.json
  EXPECT_EQ(tuned->config.rope_layout, kernels::RopeLayout::kRotateHalf);
  const double before = EvalLoss(*base->model, *base->tokenizer), after = EvalLoss(*tuned->model, *base->tokenizer);
  EXPECT_LT(after, before - 0.3) << before << " -> " << after;
  fs::remove_all(out);
}

TEST(Finetune, BadInputFailsBeforeTrainingAndWritesNothing) {
  const std::string out = TempDir("bad");
  auto message = [&](FinetuneOptions o) {
    try {
      Finetune(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  FinetuneOptions o = Options("lora", out);
  o.method = "qlora-ish";
  EXPECT_NE(message(o).find("option 'method': expected full or lora"), std::string::npos) << message(o);
  o = Options("lora", out);
  o.target_modules = {"c_attn"};
  EXPECT_NE(message(o).find("down_proj, gate_proj, k_proj"), std::string::npos) << message(o);
  o = Options("lora", out);
  o.seq_len = 513;
  EXPECT_NE(message(o).find("exceeds the model's context of 512"), std::string::npos) << message(o);
  o = Options("full", out);
  o.lr = 1e30;
  o.max_grad_norm = 0;
  o.lr_scheduler = "constant";
  EXPECT_NE(message(o).find("step 2: the "), std::string::npos) << message(o);  // loss or gradient norm
  o = Options("lora", out);
  o.lr_scheduler = "cosine_with_restarts";
  EXPECT_NE(message(o).find("cosine_with_restarts"), std::string::npos) << message(o);
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().find(fs::path(out).filename().string() + ".nibble-tmp"), std::string::npos);
}

}  // namespace
}  // namespace nibble
