// End-to-end tests of `nibble perplexity` and `nibble demo` on the shipped stories260K
// model and TinyStories excerpt. Reference: a regression band around nibble's own
// figures (docs/QUALITY.md), the protocol's window counts, one-line errors, exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "util/temp_dir.h"
#include "util/run_cli.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {

// Regression band: measured on 2026-11-24 with `nibble perplexity -m stories260K.bin
// -f tinystories_val_excerpt.txt -c 256` (PPL 3.8505) and `-c 512` (PPL 3.8067), f32.
// ±1% leaves room for summation-order changes in kernels while still catching a wrong
// tokenization, a lost BOS or a mis-scored position (each moves PPL by several percent).
constexpr double kPplCtx256 = 3.8505;
constexpr double kPplCtx512 = 3.8067;
constexpr double kTolPplRel = 0.01;

// The x of "PPL = x +/- y"; NaN when the line is missing.
double ParsePpl(const std::string& out, double* stderr_out = nullptr) {
  const size_t at = out.find("PPL = ");
  if (at == std::string::npos) return std::nan("");
  double ppl = std::nan(""), se = std::nan("");
  if (std::sscanf(out.c_str() + at, "PPL = %lf +/- %lf", &ppl, &se) != 2) return std::nan("");
  if (stderr_out != nullptr) *stderr_out = se;
  return ppl;
}

const std::string kModel = SourcePath("assets/stories260K/stories260K.bin");
const std::string kExcerpt = SourcePath("assets/tinystories-excerpt/tinystories_val_excerpt.txt");

TEST(PerplexityCli, LlamaCppProtocolCtx256IsInTheRegressionBand) {
  const RunResult r = RunCli("perplexity -m " + kModel + " -f " + kExcerpt + " -c 256 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  double se = 0;
  const double ppl = ParsePpl(r.out, &se);
  ASSERT_TRUE(std::isfinite(ppl)) << r.out;
  EXPECT_NEAR(ppl, kPplCtx256, kTolPplRel * kPplCtx256) << r.out;
  EXPECT_GT(se, 0.0) << r.out;
  // 14,479 tokens (BOS included) make 56 whole windows of 256, each scoring 127 tokens.
  EXPECT_NE(r.out.find("56 windows of ctx 256"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scored 7,112 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("summary: ppl "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;  // 256 <= the declared 512
}

TEST(PerplexityCli, StrideProtocolRunsAndScoresEveryNewToken) {
  const RunResult r =
      RunCli("perplexity -m " + kModel + " -f " + kExcerpt + " -c 128 --stride 64 --chunks 8 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double ppl = ParsePpl(r.out);
  ASSERT_TRUE(std::isfinite(ppl)) << r.out;
  // A trained model must beat the uniform distribution over its 512 tokens.
  EXPECT_GT(ppl, 1.0);
  EXPECT_LT(ppl, 512.0);
  EXPECT_NE(r.out.find("8 windows of ctx 128, sliding window, stride 64"), std::string::npos) << r.out;
  // First window scores 127 tokens, each later one its 64 new tokens: 127 + 7 * 64.
  EXPECT_NE(r.out.find("scored 575 tokens"), std::string::npos) << r.out;
}

TEST(PerplexityCli, BadInputIsOneLineAndExitCode1) {
  TempDir dir;
  {
    std::ofstream f(dir.File("short.txt"));
    f << "Once upon a time";
  }
  const std::string cases[] = {
      "perplexity -m " + kModel + " -f " + dir.File("missing.txt"),
      "perplexity -m " + kModel + " -f " + dir.File("short.txt"),
      "perplexity -m " + kModel + " -f " + kExcerpt + " -c 64 --stride 65",
      "perplexity -m " + kModel + " -f " + kExcerpt + " -c 1",
      "perplexity -m " + dir.File("nope.bin") + " -f " + kExcerpt,
  };
  const std::string expect_in[] = {"missing.txt", "short.txt", "stride", "ctx", "nope.bin"};
  for (size_t i = 0; i < std::size(cases); ++i) {
    const RunResult r = RunCli(cases[i]);
    EXPECT_EQ(r.exit_code, 1) << cases[i];
    EXPECT_EQ(r.err.rfind("nibble: error: ", 0), 0u) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_NE(r.err.find(expect_in[i]), std::string::npos) << r.err;
  }
  // The short text names its token count and the window it cannot fill.
  const RunResult r = RunCli(cases[1]);
  EXPECT_NE(r.err.find("ctx=512"), std::string::npos) << r.err;
}

TEST(DemoCli, PrintsInspectionStoryPerplexityAndMemory) {
  const RunResult r = RunCli("demo --threads 2 --assets " + SourcePath("assets/stories260K"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("== 1/3 inspect"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("260,032 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hidden_size"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== 2/3 generate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nOnce upon a time"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tok/s (prompt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== 3/3 perplexity"), std::string::npos) << r.out;
  const double ppl = ParsePpl(r.out);
  ASSERT_TRUE(std::isfinite(ppl)) << r.out;
  EXPECT_NEAR(ppl, kPplCtx512, kTolPplRel * kPplCtx512) << r.out;
  EXPECT_NE(r.out.find("demo: generation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos) << r.out;
}

TEST(DemoCli, MissingAssetsIsOneLineError) {
  TempDir dir;
  const RunResult r = RunCli("demo --assets " + dir.path().string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("nibble: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("stories260K.bin"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace nibble::test
