// A parsed Jinja2 chat template (the subset chat templates use; see README.md in this
// folder) and its rendering with transformers' settings: trim_blocks and lstrip_blocks
// on, Jinja's default Undefined, transformers' tojson and globals.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/ast.h"

namespace nibble::tokenizer::jinja {

class Template {
 public:
  // Throws ConfigError naming the line for a syntax error or a construct outside the
  // subset (a macro, an unimplemented filter, an include...).
  static Template Parse(std::string_view source);

  // Renders with `vars` (a JSON object) as the template's variables. Throws
  // ConfigError for raise_exception (with its message), an undefined variable used
  // where Jinja raises (attribute of undefined, undefined + str), a type error, or a
  // render exceeding the work limits in builtins.h.
  std::string Render(const nlohmann::ordered_json& vars) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace nibble::tokenizer::jinja
