// End-to-end tests of `nibble chat`: one-shot (-p) and stdin loop on stories260K with a
// ChatML template file (its GGUF has no chat template), the error without one, and
// the per-reply/summary lines on stderr. Reference for the text: the same greedy
// conversation through nibble::ChatSession (exact: same weights, greedy decoding).
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "nibble/chat.h"
#include "util/file_bytes.h"
#include "util/run_cli.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {

constexpr int kReplyTokens = 16;

std::string Model() { return SourcePath("assets/stories260K/stories260K.gguf"); }
std::string ChatmlTemplate() { return Golden("chat/chatml.jinja"); }
std::string Flags() {
  return " --temp 0 -n " + std::to_string(kReplyTokens) + " --threads 1 -c 256 --template " + ChatmlTemplate();
}

ChatSession ApiSession() {
  ChatOptions o;
  o.model_path = Model();
  o.template_path = ChatmlTemplate();
  o.temperature = 0.0f;
  o.n_predict = kReplyTokens;
  o.num_threads = 1;
  o.ctx_size = 256;
  return ChatSession(o);
}

TEST(ChatCli, NoTemplateIsAConfigErrorSuggestingTemplate) {
  const RunResult r = RunCli("chat -m " + Model() + " -p hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nibble: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--template"), std::string::npos) << r.err;
}

TEST(ChatCli, OneShotPrintsTheApiReply) {
  const RunResult r = RunCli("chat -m " + Model() + Flags() + " -p \"Once upon a time\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ChatSession s = ApiSession();
  EXPECT_EQ(r.out, s.Send("Once upon a time").text + "\n");
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("summary: 1 turns"), std::string::npos) << r.err;
}

TEST(ChatCli, StdinLoopKeepsHistoryAndResets) {
  TempDir dir;
  const std::string input = dir.File("input.txt");
  std::ofstream(input) << "Once upon a time\nThe cat sat\n/reset\nOnce upon a time\n/exit\nnot sent\n";
  const RunResult r = RunCli("chat -m " + Model() + Flags() + " < " + input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ChatSession s = ApiSession();
  const std::string first = s.Send("Once upon a time").text;
  const std::string second = s.Send("The cat sat").text;
  // After /reset the first message gets the first reply again (greedy, empty history).
  EXPECT_EQ(r.out, first + "\n" + second + "\n" + first + "\n");
  EXPECT_NE(r.err.find("[conversation cleared]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("summary: 3 turns"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reused from the cache"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace nibble::test
