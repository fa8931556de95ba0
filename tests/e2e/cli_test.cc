// End-to-end tests of the nibble CLI binary: output, summaries, exit codes and
// one-line errors. Reference: the facts of the shared data files (their README).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "util/temp_dir.h"
#include "util/run_cli.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {

// True when some line of `out` is "<spaces>key<spaces>value".
bool HasRow(const std::string& out, const std::string& key, const std::string& value) {
  std::istringstream in(out);
  std::string k, v, line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    if (fields >> k >> v && k == key && v == value && !(fields >> v)) return true;
  }
  return false;
}

int CountLines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(Cli, InspectGgufListsAll48Tensors) {
  const RunResult r = RunCliMerged("inspect " + SharedData("llama2c-stories260K/stories260K.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("gguf (v3), 48 tensors"), std::string::npos) << r.out;
  // 260,032 weights + output.weight, ggml-org's copy of the 512x64 embedding.
  EXPECT_NE(r.out.find("292,800 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("token_embd.weight"), std::string::npos);
  EXPECT_NE(r.out.find("[512, 64]"), std::string::npos);
  EXPECT_NE(r.out.find("num_key_value_heads"), std::string::npos);
  EXPECT_NE(r.out.find("summary: gguf"), std::string::npos);
}

TEST(Cli, InspectLlama2cCountsParametersWithoutRopeTables) {
  const RunResult r = RunCliMerged("inspect --no-tensors " + SourcePath("assets/stories260K/stories260K.bin"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // 264,128 floats in the file minus the 2 x 512 x 4 legacy RoPE tables.
  EXPECT_NE(r.out.find("260,032 parameters"), std::string::npos) << r.out;
  EXPECT_TRUE(HasRow(r.out, "hidden_size", "64")) << r.out;
  EXPECT_NE(r.out.find("(4.000 bytes/param)"), std::string::npos) << r.out;
}

TEST(Cli, InspectJsonIsOneDocument) {
  const RunResult r = RunCliMerged("inspect --json " + SharedData("hf-tiny-random-llama"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_NE(r.out.find("\"num_params\""), std::string::npos);
  EXPECT_NE(r.out.find("\"model.embed_tokens.weight\""), std::string::npos);
  EXPECT_NE(r.out.find("\"hidden_size\": \"16\""), std::string::npos) << r.out;
}

TEST(Cli, ConvertPrintsSizesAndError) {
  TempDir dir;
  const std::string out = dir.File("m.gguf");
  const RunResult r =
      RunCliMerged("convert --dtype bf16 " + SharedData("llama2c-stories260K/stories260K.gguf") + " " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(out));
  EXPECT_NE(r.out.find("48 tensors, 48 converted to bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max |err|"), std::string::npos);
  EXPECT_NE(r.out.find("summary: gguf"), std::string::npos);
}

TEST(Cli, BadInputGivesOneLineErrorAndNonZeroExit) {
  TempDir dir;
  const std::string missing = dir.File("nope.gguf");
  RunResult r = RunCliMerged("inspect " + missing);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(CountLines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find(missing), std::string::npos) << r.out;

  const std::string out = dir.File("x.gguf");
  r = RunCliMerged("convert --dtype f8_e4m3fn " + SharedData("llama2c-stories260K/stories260K.gguf") + " " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(CountLines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("GGUF cannot hold dtype f8_e4m3fn"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_EQ(CountTemporaries(dir.path()), 0);

  r = RunCliMerged("convert --dtype f17 a.gguf b.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("unknown dtype 'f17'"), std::string::npos) << r.out;
}

TEST(Cli, HelpHasExamples) {
  for (const char* cmd : {"--help", "inspect --help", "convert --help", "memory --help", "finetune --help"}) {
    const RunResult r = RunCliMerged(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Examples:"), std::string::npos) << cmd << r.out;
  }
}

// `nibble memory --json` is one JSON object with the documented component names whose
// total is their sum minus the disk-backed paged state; an unknown optimizer is a one-line
// error listing the known ones.
TEST(Cli, MemoryJsonHasTheComponentsAndTheirTotal) {
  const std::string model = SourcePath("assets/stories260K/stories260K.bin");
  const RunResult r = RunCli("memory -m " + model + " --method full --optim paged_adamw_8bit --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  uint64_t sum = 0;
  for (const char* k : {"weights", "quant_constants", "gradients", "optimizer_state", "optimizer_paged", "activations",
                        "logits", "scratch"}) {
    ASSERT_TRUE(j["components"].contains(k)) << k;
    if (std::string(k) != "optimizer_paged") sum += j["components"][k].get<uint64_t>();
  }
  EXPECT_EQ(j["total"].get<uint64_t>(), sum);
  EXPECT_EQ(j["components"]["gradients"].get<uint64_t>(), j["components"]["weights"].get<uint64_t>());
  const RunResult bad = RunCliMerged("memory -m " + model + " --optim sgd");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("unknown optimizer \"sgd\""), std::string::npos) << bad.out;
  EXPECT_EQ(CountLines(bad.out), 1) << bad.out;
}

}  // namespace
}  // namespace nibble::test
