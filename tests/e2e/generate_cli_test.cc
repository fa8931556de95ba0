// End-to-end tests of `nibble generate` and `nibble tokenize`: streamed text on stdout,
// the summary line on stderr, exit codes and one-line errors. References: llama2.c's
// greedy stories260K text (shared data README) and the tok512 ids nibble's API gives.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "nibble/generate.h"
#include "util/temp_dir.h"
#include "util/file_bytes.h"
#include "util/run_cli.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {

const std::string kStories = "llama2c-stories260K/";

TEST(GenerateCli, GreedyBinPrintsLlama2cTextAndSummary) {
  const RunResult r =
      RunCli("generate -m " + SharedData(kStories + "stories260K.bin") + " --temp 0 -n 256 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Empty prompt: nothing echoed, then the text and a final newline, as llama2.c prints it.
  EXPECT_EQ(r.out, ReadFileText(SharedData(kStories + "stories260K_greedy_t0_expected.txt")));
  EXPECT_NE(r.err.find("summary: prompt 1 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generated 256 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("peak RSS"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("peak alloc"), std::string::npos) << r.err;
}

TEST(GenerateCli, GgufCtx512WarnsAndGivesTheSameText) {
  const RunResult r = RunCli("generate -m " + SharedData(kStories + "stories260K.gguf") + " --temp 0 -n 256 -c 512");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ReadFileText(SharedData(kStories + "stories260K_greedy_t0_expected.txt")));
  EXPECT_NE(r.err.find("nibble: warning: context 512 is larger than the 128"), std::string::npos) << r.err;
}

TEST(GenerateCli, PromptIsEchoedAndSeedPrinted) {
  TempDir dir;
  {
    std::ofstream f(dir.File("p.txt"));
    f << "Once upon a time";
  }
  const RunResult r = RunCli("generate -m " + SharedData(kStories + "stories260K.bin") + " -f " + dir.File("p.txt") +
                             " -n 20 --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  EXPECT_GT(r.out.size(), std::string("Once upon a time").size() + 20) << r.out;
  EXPECT_NE(r.err.find("seed 7 "), std::string::npos) << r.err;
  EXPECT_EQ(
      RunCli("generate -m " + SharedData(kStories + "stories260K.bin") + " -f " + dir.File("p.txt") + " -n 20 --seed 7")
          .out,
      r.out);
}

TEST(GenerateCli, BadInputIsOneLineAndExitCode1) {
  const std::string bin = SharedData(kStories + "stories260K.bin");
  for (const auto& [args, field] : std::vector<std::pair<std::string, std::string>>{
           {"generate -m " + bin + " -t " + SharedData("tokenizer-llamacpp-vocab/ggml-vocab-llama-spm.gguf"),
            "vocab_size is 512"},
           {"generate -m " + bin + " -c 2 -p \"Once upon a time\"", "(ctx, -c) holds 2"},
           {"generate -m " + bin + " --top-p 2", "top_p"},
           {"generate -m /nonexistent.gguf", "/nonexistent.gguf"},
       }) {
    const RunResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_EQ(r.out, "") << args;  // the prompt is echoed only once the model runs
    EXPECT_EQ(r.err.rfind("nibble: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(TokenizeCli, PrintsIdsAndPiecesLikeLlamaTokenize) {
  const std::string text = "Once upon a time";
  const TokenizeResult want = Tokenize(SharedData(kStories + "stories260K.gguf"), "", text);
  std::string lines, list = "[";
  for (size_t i = 0; i < want.ids.size(); ++i) {
    char line[64];
    std::snprintf(line, sizeof(line), "%6d -> '%s'\n", want.ids[i], want.pieces[i].c_str());
    lines += line;
    list += (i ? ", " : "") + std::to_string(want.ids[i]);
  }
  const RunResult a = RunCli("tokenize -m " + SharedData(kStories + "stories260K.gguf") + " -p \"" + text + "\"");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, lines);
  EXPECT_EQ(lines.rfind("     1 -> '<s>'\n", 0), 0u);
  const RunResult b = RunCli("tokenize -t " + SharedData(kStories + "tok512.bin") + " -p \"" + text + "\" --ids");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.out, list + "]\n");
  const RunResult c = RunCli("tokenize -t " + SharedData(kStories + "tok512.bin") + " -p \"" + text + "\" --json");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  // tok512.bin spells BOS "\n<s>\n" (llama2.c's export), escaped in JSON.
  EXPECT_EQ(c.out.rfind("[{\"id\": 1, \"piece\": \"\\n<s>\\n\"}, {\"id\": 403, ", 0), 0u) << c.out;
  const RunResult d = RunCli("tokenize -p hello");
  EXPECT_EQ(d.exit_code, 1);
  EXPECT_NE(d.err.find("-m MODEL or -t TOKENIZER"), std::string::npos) << d.err;
}

}  // namespace
}  // namespace nibble::test
