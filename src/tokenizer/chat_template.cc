// ApplyChatTemplate: messages and special-token strings as template variables.
#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"

namespace nibble::tokenizer {

std::string ApplyChatTemplate(std::string_view tmpl, const std::vector<ChatMessage>& msgs,
                              bool add_generation_prompt, std::string_view bos, std::string_view eos) {
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const ChatMessage& m : msgs) messages.push_back({{"role", m.role}, {"content", m.content}});
  vars["messages"] = std::move(messages);
  // transformers' render_jinja_template passes tools and documents as None when absent.
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = add_generation_prompt;
  vars["bos_token"] = std::string(bos);
  vars["eos_token"] = std::string(eos);
  return jinja::Template::Parse(tmpl).Render(vars);
}

}  // namespace nibble::tokenizer
