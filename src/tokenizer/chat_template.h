// Chat templates: a conversation rendered into a prompt with the model's Jinja2
// template, the way transformers' apply_chat_template renders it (see jinja/).
// Layer: tokenizer (level 1), may depend on core, nlohmann-json and include/nibble.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nibble/chat.h"

namespace nibble::tokenizer {

// Renders `tmpl` with the variables transformers passes: messages (role, content),
// add_generation_prompt, bos_token, eos_token, and tools = documents = None. Throws
// ConfigError naming the line for a template outside the supported subset, a syntax
// error, or a raise_exception() call (its message included).
std::string ApplyChatTemplate(std::string_view tmpl, const std::vector<ChatMessage>& msgs,
                              bool add_generation_prompt, std::string_view bos, std::string_view eos);

}  // namespace nibble::tokenizer
