// nibble::Model: a model loaded once and passed to every run must give exactly what the
// one-shot calls (which load their own) give: greedy text and ids, perplexity figures,
// chat replies and fine-tuning losses compare exactly (same weights, same kernels, same
// thread count, so the same floating-point operations). The Model's weights must not
// change under a run: a second run on it repeats the first.
#include "nibble/model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "nibble/chat.h"
#include "nibble/error.h"
#include "nibble/finetune.h"
#include "nibble/generate.h"
#include "nibble/perplexity.h"
#include "util/test_paths.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;

std::string Stories() { return test::SourcePath("assets/stories260K/stories260K.gguf"); }
const std::string kText = "text-tinyshakespeare/input.txt";

ModelOptions Load(const std::string& path) {
  ModelOptions o;
  o.model_path = path;
  o.num_threads = 2;
  return o;
}

TEST(Model, GenerateOnALoadedModelEqualsTheOneShotCall) {
  const Model model(Load(Stories()));
  EXPECT_EQ(model.vocab_size(), 512);
  EXPECT_EQ(model.num_layers(), 5);
  EXPECT_GT(model.context_length(), 0);
  GenerateOptions g;
  g.model_path = Stories();
  g.num_threads = 2;
  g.prompt = "Once upon a time";
  g.temperature = 0.8f;
  g.seed = 7;
  g.n_predict = 40;
  const GenerateReport once = Generate(g);
  const GenerateReport first = Generate(model, g), second = Generate(model, g);
  EXPECT_EQ(first.generated_ids, once.generated_ids);
  EXPECT_EQ(first.text, once.text);
  EXPECT_EQ(second.generated_ids, once.generated_ids);  // the model is unchanged by a run
  EXPECT_GT(first.peak_alloc_bytes, 0u);
  // The options' load fields are not read: a path that does not exist changes nothing.
  g.model_path = "/nonexistent/model.gguf";
  EXPECT_EQ(Generate(model, g).generated_ids, once.generated_ids);
}

TEST(Model, PerplexityAndChatOnALoadedModelEqualTheOneShotCalls) {
  const Model model(Load(Stories()));
  PerplexityOptions p;
  p.model_path = Stories();
  p.text_path = test::SharedData(kText);
  p.ctx = 128;
  p.max_chunks = 3;
  p.num_threads = 2;
  const PerplexityReport once = EvaluatePerplexity(p), loaded = EvaluatePerplexity(model, p);
  EXPECT_EQ(loaded.ppl, once.ppl);
  EXPECT_EQ(loaded.scored_tokens, once.scored_tokens);

  ChatOptions c;
  c.model_path = Stories();
  c.template_path = test::Golden("chat/chatml.jinja");
  c.temperature = 0.0f;
  c.n_predict = 16;
  c.num_threads = 2;
  c.ctx_size = 256;
  ChatSession a(c), b(model, c);
  EXPECT_EQ(b.Send("Tell me a story.").text, a.Send("Tell me a story.").text);
}

TEST(Model, FinetuneOnALoadedModelEqualsTheOneShotCallAndLeavesItUnchanged) {
  const Model model(Load(test::SharedData("llama2c-stories260K/stories260K.bin")));
  FinetuneOptions f;
  f.model_path = model.options().model_path;
  f.text_path = test::SharedData(kText);
  f.method = "lora";
  f.target_modules = {"all-linear"};
  f.seq_len = 32;
  f.batch_size = 2;
  f.max_steps = 3;
  f.lr = 1e-2;
  f.num_threads = 2;
  const fs::path dir = fs::temp_directory_path() / ("nibble-model-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  f.out_dir = (dir / "once").string();
  const FinetuneReport once = Finetune(f);
  f.out_dir = (dir / "loaded").string();
  const FinetuneReport loaded = Finetune(model, f);
  EXPECT_EQ(loaded.first_loss, once.first_loss);
  EXPECT_EQ(loaded.last_loss, once.last_loss);
  // Full fine-tuning trains a copy: a LoRA run after it starts from the same loss.
  f.method = "full";
  f.out_dir = (dir / "full").string();
  Finetune(model, f);
  f.method = "lora";
  f.out_dir = (dir / "again").string();
  EXPECT_EQ(Finetune(model, f).first_loss, once.first_loss);
  fs::remove_all(dir);
}

TEST(Model, BadLoadOptionsNameTheField) {
  EXPECT_THROW(Model(ModelOptions{}), ConfigError);  // no model path
  EXPECT_THROW(ParseWeightDtype("f16"), ConfigError);
  ModelOptions o = Load("/nonexistent/model.gguf");
  EXPECT_ANY_THROW(Model{o});
}

}  // namespace
}  // namespace nibble
