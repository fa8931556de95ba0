// `nibble quantize`, `dequantize` and `export` through the CLI: exit codes, the summary
// line (sizes, bits/param, time, memory), one-line errors, and what the output holds.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "quant/qgemv4_i8.h"
#include "util/run_cli.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {
namespace fs = std::filesystem;

const std::string kModel = SourcePath("assets/stories260K/stories260K.bin");

TEST(QuantizeCli, QuantizeDequantizeExport) {
  TempDir dir;
  const RunResult q = RunCli("quantize --method nf4 --double-quant --compute-dtype bfloat16 " + kModel + " " +
                             dir.File("nf4"));
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("35 quantized Linear weights"), std::string::npos) << q.out;
  EXPECT_NE(q.out.find("summary: quantize llama2c"), std::string::npos) << q.out;
  EXPECT_NE(q.out.find("bits/param"), std::string::npos);
  EXPECT_NE(q.out.find("peak RSS"), std::string::npos);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir.File("nf4")) / f)) << f;
  // inspect counts each quantized weight as its unquantized shape (packed codes, scales and
  // quant state are storage): the llama2.c model's 260,032 parameters.
  const RunResult i = RunCli("inspect --no-tensors " + dir.File("nf4"));
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_NE(i.out.find("| 260,032 params |"), std::string::npos) << i.out;
  const RunResult g = RunCli("generate -m " + dir.File("nf4") + " -p \"Once upon a time\" -n 8 --temp 0");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(g.out.rfind("Once upon a time", 0), 0u) << g.out;
  // The int8 options run the checkpoint; on a dense model --int8-activations warns.
  const RunResult g8 = RunCli("generate -m " + dir.File("nf4") +
                              " --int8-activations --int8-classifier -p \"Once upon a time\" -n 8 --temp 0");
  ASSERT_EQ(g8.exit_code, 0) << g8.err;
  EXPECT_EQ(g8.out.rfind("Once upon a time", 0), 0u) << g8.out;
  // The child inherits NIBBLE_CPU: it warns exactly when this process would run the
  // scalar reference (the effective CPU level, detected then capped, never hard-coded).
  const bool ref_path = quant::ChooseInt8ActivationsPath() == quant::Int8ActivationsPath::kRef;
  EXPECT_EQ((g8.out + g8.err).find("warning") != std::string::npos, ref_path) << g8.out << g8.err;
  const RunResult gd = RunCli("generate -m " + kModel + " --int8-activations -n 4 --temp 0");
  ASSERT_EQ(gd.exit_code, 0) << gd.err;
  EXPECT_NE((gd.out + gd.err).find("--int8-activations: the model has no quantized layers"), std::string::npos)
      << gd.out << gd.err;
  const RunResult d = RunCli("dequantize --dtype bf16 " + dir.File("nf4") + " " + dir.File("plain"));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NE(d.out.find("summary: dequantize"), std::string::npos);
  const RunResult e = RunCli("export --format hf -m " + kModel + " " + dir.File("hf"));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("summary: export"), std::string::npos);
}

TEST(QuantizeCli, ErrorsAreOneLineAndNonZero) {
  TempDir dir;
  for (const std::string& args :
       {"quantize --method q9 " + kModel + " " + dir.File("a"), "quantize --blocksize 48 " + kModel + " " + dir.File("a"),
        "export --format gguf -m " + kModel + " " + dir.File("a"), "dequantize " + kModel + " " + dir.File("a")}) {
    const RunResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_EQ(r.err.rfind("nibble: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir.File("a"))) << args;
  }
}

}  // namespace
}  // namespace nibble::test
