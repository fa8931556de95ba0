// Jinja2 template source -> tokens, with the whitespace rules transformers renders
// chat templates with: trim_blocks and lstrip_blocks on, `-`/`+` tag modifiers,
// newlines normalised to "\n" and one trailing newline dropped (Jinja's lexer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tokenizer::jinja {

enum class TokenType { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  TokenType type = TokenType::kEof;
  std::string text;  // kText: the data; kName/kOp: the spelling; kString: the unescaped value
  int64_t i = 0;     // kInt
  double f = 0;      // kFloat
  int line = 1;
};

// Throws ConfigError naming the line for an unterminated tag, comment or string, a
// character that starts no token, or an unsupported `{% raw %}` block.
std::vector<Token> Lex(std::string_view source);

}  // namespace nibble::tokenizer::jinja
