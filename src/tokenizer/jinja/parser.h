// Tokens of a chat template -> syntax tree (Jinja2 3.1's grammar for the subset:
// for/if/set/break/continue/generation, expressions with filters, tests, calls).
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace nibble::tokenizer::jinja {

// Parses the template. Throws ConfigError naming the line for a syntax error or a
// construct outside the subset (macro, call, include, an unimplemented filter or test).
Body Parse(const std::vector<Token>& tokens);

// Names the renderer implements (checked at parse time, as Jinja checks filters
// when it compiles a template).
bool IsKnownFilter(std::string_view name);
bool IsKnownTest(std::string_view name);

}  // namespace nibble::tokenizer::jinja
