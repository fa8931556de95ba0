// ApplyChatTemplate on real chat templates against transformers' render_jinja_template
// (jinja2 3.1.6): tests/golden/chat/templates.json holds, per template and message
// set, the prompt transformers renders or the error it raises (roles not alternating,
// roles a template refuses); made by scripts/goldens/make_chat_goldens.py.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nibble/error.h"
#include "tokenizer/jinja/template.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::tokenizer {
namespace {

// A prompt is tokenized, so it must match byte for byte: exact string equality.
constexpr bool kTolExactText = true;

std::string ReadTemplate(const std::string& name) {
  return test::ReadFileText(test::Golden("chat/" + name + ".jinja"));
}

TEST(ChatTemplateTest, RealTemplatesMatchTransformers) {
  const auto cases = nlohmann::ordered_json::parse(test::ReadFileText(test::Golden("chat/templates.json")));
  ASSERT_GT(cases.size(), 100u);
  int rendered = 0, refused = 0;
  for (const auto& c : cases) {
    const std::string name = c["template"].get<std::string>();
    SCOPED_TRACE(name + "/" + c["case"].get<std::string>() + (c["add_generation_prompt"].get<bool>() ? "+gen" : ""));
    const std::string tmpl = ReadTemplate(name);
    std::string got;
    try {
      if (c.contains("tools")) {
        // Tool calls are not ChatMessage fields: render through the engine with the
        // variables transformers passes.
        nlohmann::ordered_json vars = {{"messages", c["messages"]},
                                       {"tools", c["tools"]},
                                       {"documents", nullptr},
                                       {"add_generation_prompt", c["add_generation_prompt"]},
                                       {"bos_token", c["bos"]},
                                       {"eos_token", c["eos"]}};
        got = jinja::Template::Parse(tmpl).Render(vars);
      } else {
        std::vector<ChatMessage> msgs;
        for (const auto& m : c["messages"]) msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        got = ApplyChatTemplate(tmpl, msgs, c["add_generation_prompt"].get<bool>(), c["bos"].get<std::string>(),
                                c["eos"].get<std::string>());
      }
    } catch (const ConfigError& e) {
      if (c.contains("error")) {
        // transformers raised TemplateError(message): the same message must surface.
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos) << e.what();
        ++refused;
      } else {
        ADD_FAILURE() << "ConfigError: " << e.what();
      }
      continue;
    }
    ASSERT_FALSE(c.contains("error")) << "transformers raised " << c["error"] << " but nibble rendered " << got;
    if (kTolExactText) {
      EXPECT_EQ(got, c["expected"].get<std::string>());
    }
    ++rendered;
  }
  EXPECT_GT(rendered, 90);
  EXPECT_GE(refused, 4);  // Llama 2 / Mistral on non-alternating roles, Mistral on system messages
}

TEST(ChatTemplateTest, MistralRefusesNonAlternatingRoles) {
  const std::vector<ChatMessage> bad = {{"user", "one"}, {"user", "two"}};
  try {
    ApplyChatTemplate(ReadTemplate("mistral"), bad, true, "<s>", "</s>");
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate user/assistant/user/assistant/..."),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace nibble::tokenizer
