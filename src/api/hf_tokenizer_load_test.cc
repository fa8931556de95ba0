// Wiring of Hugging Face tokenizer files into VocabFromFile and LoadModel: recognition
// by name and content, tokenizer_config.json applied from beside the file, and the
// tokenizer.json → tokenizer.model search in a safetensors checkpoint's directory.
// Reference: the shared GPT-2 tokenizer files, tok512.model and the tokenizer.json
// converted from it by transformers (tests/golden/tokenizer); exact ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "api/model_loader.h"
#include "core/exec_context.h"
#include "nibble/error.h"
#include "util/file_bytes.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::api {
namespace {

namespace fs = std::filesystem;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(HfTokenizerLoadTest, VocabFromFileReadsTokenizerJsonWithItsConfig) {
  const tokenizer::Vocab v = VocabFromFile(test::SharedData("peft-lora-gpt2/tokenizer.json"), 50257);
  EXPECT_EQ(v.model, tokenizer::VocabModel::kBpe);
  // bos/eos come only from the tokenizer_config.json beside it (<|endoftext|>).
  EXPECT_EQ(v.bos_id, 50256);
  EXPECT_EQ(v.eos_id, 50256);
  EXPECT_THROW(VocabFromFile(test::SharedData("peft-lora-gpt2/tokenizer.json"), 32000), ConfigError);
}

TEST(HfTokenizerLoadTest, VocabFromFileRecognisesJsonContentAndModelFiles) {
  test::TempDir dir;
  // No .json name: recognised by content.
  fs::copy_file(test::Golden("tokenizer/tok512_legacy.json"), dir.File("vocab.txt"));
  const tokenizer::Vocab from_json = VocabFromFile(dir.File("vocab.txt"), 512);
  fs::copy_file(test::SharedData("llama2c-stories260K/tok512.model"), dir.File("tokenizer.model"));
  const tokenizer::Vocab from_model = VocabFromFile(dir.File("tokenizer.model"), 512);
  EXPECT_EQ(from_json.model, tokenizer::VocabModel::kSpm);
  EXPECT_EQ(from_json.pieces, from_model.pieces);
  const tokenizer::Tokenizer a(from_json), b(from_model);
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  EXPECT_EQ(a.Encode(text, true, false), b.Encode(text, true, false));
  EXPECT_EQ(a.Encode(text, true, false).front(), 1);  // BOS from both
}

class HfCheckpointTokenizerTest : public ::testing::Test {
 protected:
  // A checkpoint directory with a 512-token vocabulary: the tiny random Llama's
  // config.json with vocab_size 512 (weights are not loaded, only the config is read).
  void SetUp() override {
    std::string cfg = test::ReadFileText(test::SharedData("hf-tiny-random-llama/config.json"));
    const size_t at = cfg.find("\"vocab_size\": 32000");
    ASSERT_NE(at, std::string::npos);
    cfg.replace(at, std::string("\"vocab_size\": 32000").size(), "\"vocab_size\": 512");
    WriteText(dir_.File("config.json"), cfg);
    fs::create_symlink(test::SharedData("hf-tiny-random-llama/model.safetensors"), dir_.File("model.safetensors"));
  }

  std::unique_ptr<LoadedModel> Load() {
    LoadOptions options;
    options.load_weights = false;
    return LoadModel(dir_.path().string(), options, ctx_);
  }

  test::TempDir dir_;
  ExecContext ctx_{1};
};

TEST_F(HfCheckpointTokenizerTest, PrefersTokenizerJsonAndAppliesConfig) {
  fs::copy_file(test::SharedData("llama2c-stories260K/tok512.model"), dir_.File("tokenizer.model"));
  fs::copy_file(test::Golden("tokenizer/tok512_legacy.json"), dir_.File("tokenizer.json"));
  WriteText(dir_.File("tokenizer_config.json"), R"({"add_bos_token": false, "add_eos_token": true, "eos_token": "</s>"})");
  const auto m = Load();
  EXPECT_EQ(m->tokenizer_source, dir_.File("tokenizer.json"));
  ASSERT_NE(m->tokenizer, nullptr);
  const std::vector<int32_t> ids = m->tokenizer->Encode("Lily", true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(ids.front(), 1);  // add_bos_token: false overrides the template's <s>
  EXPECT_EQ(ids.back(), 2);   // add_eos_token: true, eos </s> = 2
}

TEST_F(HfCheckpointTokenizerTest, FallsBackToTokenizerModel) {
  fs::copy_file(test::SharedData("llama2c-stories260K/tok512.model"), dir_.File("tokenizer.model"));
  const auto m = Load();
  EXPECT_EQ(m->tokenizer_source, dir_.File("tokenizer.model"));
  EXPECT_EQ(m->tokenizer->vocab_size(), 512);
}

TEST_F(HfCheckpointTokenizerTest, NoTokenizerFileAsksForOne) {
  try {
    Load();
    ADD_FAILURE() << "loaded without a tokenizer";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("-t/--tokenizer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nibble::api
