// The CPU cap from the command line: `nibble --version` reports the features, the cap and
// each kernel's path; NIBBLE_CPU and --cpu set the cap (the flag wins); bad values are a
// one-line error; `generate --json` prints ids, and a capped run decodes the same ids.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/cpu_features.h"
#include "util/run_cli.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {

bool Has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// These children run at caps of their own, whatever NIBBLE_CPU the test pass has: they stay
// out of the pass's dispatch log (scripts/test.sh prints what each capped pass ran).
RunResult RunCapped(const std::string& env, const std::string& args) {
  return RunCliEnv("-u NIBBLE_DISPATCH_LOG " + env, args);
}

// The "kernel paths:" part of the report (the lines above list what the CPU has).
std::string Paths(const std::string& report) {
  const size_t at = report.find("kernel paths:");
  return at == std::string::npos ? std::string() : report.substr(at);
}

TEST(CpuCli, VersionReportsFeaturesCapAndPaths) {
  const RunResult r = RunCapped("-u NIBBLE_CPU", "--version");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"nibble 0.1.0", "features: ", "cap: native (from default)", "highway: ", "kernel paths:",
                        "f32 matmul", "4-bit GEMV, f32 compute", "4-bit GEMV, --int8-activations", "LLM.int8() int8 dot"})
    EXPECT_TRUE(Has(r.out, s)) << s << "\n" << r.out;
  EXPECT_TRUE(Has(r.out, std::string("kernels run at: ") + CpuLevelName(DetectedCpuLevel()))) << r.out;
}

TEST(CpuCli, ScalarCapNamesTheScalarPaths) {
  const RunResult r = RunCapped("NIBBLE_CPU=scalar", "--version");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"cap: scalar (from NIBBLE_CPU); kernels run at: scalar", "highway: SCALAR"})
    EXPECT_TRUE(Has(r.out, s)) << s << "\n" << r.out;
  const std::string p = Paths(r.out);
  for (const char* s : {"highway SCALAR", "scalar reference", "oneDNN is off at the scalar cap"})
    EXPECT_TRUE(Has(p, s)) << s << "\n" << r.out;
  for (const char* s : {"avx512", "avx2", "AVX2", "AVX3"}) EXPECT_FALSE(Has(p, s)) << s << "\n" << r.out;
}

TEST(CpuCli, FlagOverridesEnvironment) {
  if (DetectedCpuLevel() < CpuLevel::kAvx2) GTEST_SKIP() << "CPU below AVX2";
  const RunResult r = RunCapped("NIBBLE_CPU=scalar", "--cpu avx2 --version");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "cap: avx2 (from --cpu); kernels run at: avx2")) << r.out;
  const std::string p = Paths(r.out);
  for (const char* s : {"highway AVX2", "avx2 (vpmaddubsw)"}) EXPECT_TRUE(Has(p, s)) << s << "\n" << r.out;
  for (const char* s : {"AVX3", "avx512", "SCALAR"}) EXPECT_FALSE(Has(p, s)) << s << "\n" << r.out;
}

TEST(CpuCli, BadValuesAreOneLineErrors) {
  const RunResult f = RunCapped("-u NIBBLE_CPU", "--cpu avx3 --version");
  EXPECT_NE(f.exit_code, 0);
  EXPECT_TRUE(Has(f.err, "--cpu")) << f.err;
  const RunResult e = RunCapped("NIBBLE_CPU=avx3", "--version");
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_TRUE(Has(e.err, "nibble: error: NIBBLE_CPU='avx3': expected native, avx512, avx2 or scalar")) << e.err;
}

// generate --json: one JSON object; every cap decodes the same greedy ids (f32 model).
TEST(CpuCli, GenerateJsonIdsEqualAcrossCaps) {
  const std::string args = "generate -m " + SourcePath("assets/stories260K/stories260K.bin") +
                           " -p \"Once upon a time\" -n 24 --temp 0 --json";
  const RunResult native = RunCapped("-u NIBBLE_CPU", args);
  ASSERT_EQ(native.exit_code, 0) << native.err;
  const auto j = nlohmann::json::parse(native.out);
  EXPECT_EQ(j["prompt_ids"].size(), j["prompt_tokens"].get<size_t>());
  ASSERT_EQ(j["ids"].size(), 24u);
  EXPECT_EQ(j["text"].get<std::string>().rfind(", there was a little girl named Lily", 0), 0u) << j["text"];
  EXPECT_EQ(j["stop_reason"], "n_predict");
  EXPECT_TRUE(Has(native.err, "summary: prompt")) << native.err;
  for (const char* cap : {"avx2", "scalar"}) {
    const RunResult r = RunCapped("-u NIBBLE_CPU", std::string("--cpu ") + cap + " " + args);
    ASSERT_EQ(r.exit_code, 0) << cap << r.err;
    const auto c = nlohmann::json::parse(r.out);
    EXPECT_EQ(c["ids"], j["ids"]) << cap;
    EXPECT_EQ(c["prompt_ids"], j["prompt_ids"]) << cap;
  }
}

}  // namespace
}  // namespace nibble::test
