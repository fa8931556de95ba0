// Jinja2 lexer for the chat-template subset; mirrors jinja2/lexer.py (3.1) rules:
// tags are found left to right, `{%-` strips all whitespace before a tag, lstrip_blocks
// strips spaces/tabs before `{%`/`{#` on an otherwise empty line, trim_blocks drops
// one "\n" after `%}`/`#}`, and `-%}` strips all whitespace after a tag.
#include "tokenizer/jinja/lexer.h"

#include <fmt/format.h>

#include <cstring>

#include "nibble/error.h"
#include "tokenizer/jinja/text.h"
#include "tokenizer/utf8.h"

namespace nibble::tokenizer::jinja {
namespace {

enum class TagKind { kVar, kBlock, kComment };

[[noreturn]] void Fail(int line, const std::string& what) {
  throw ConfigError(fmt::format("chat template line {}: {}", line, what));
}

// Jinja reads "\r\n" and "\r" as "\n" and, with keep_trailing_newline off, drops one
// newline at the very end.
std::string Normalize(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    if (in[k] == '\r') {
      out += '\n';
      if (k + 1 < in.size() && in[k + 1] == '\n') ++k;
    } else {
      out += in[k];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length of the whitespace character (Python's \s) at s[pos], or 0.
size_t SpaceLength(std::string_view s, size_t pos) {
  const size_t n = Utf8SequenceLength(s, pos);
  if (n == 0) return 0;
  return IsPySpace(Utf8Decode(s, pos, n)) ? n : 0;
}

bool AllSpace(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = SpaceLength(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return !s.empty();
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(Normalize(source)) {}

  std::vector<Token> Run() {
    bool line_starting = true;  // the previous match ended with "\n" (Jinja's rule)
    while (pos_ < src_.size()) {
      const size_t start = FindTagStart(pos_);
      std::string text = src_.substr(pos_, (start == std::string::npos ? src_.size() : start) - pos_);
      if (start == std::string::npos) {
        Emit(TokenType::kText, std::move(text));
        break;
      }
      const char c = src_[start + 1];
      const TagKind kind = c == '{' ? TagKind::kVar : c == '%' ? TagKind::kBlock : TagKind::kComment;
      const char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign == '-') {
        text = Strip(text, std::nullopt, false, true);
      } else if (sign != '+' && kind != TagKind::kVar) {
        const size_t l_pos = text.rfind('\n') + 1;  // npos + 1 == 0
        if ((l_pos > 0 || line_starting) && AllSpace(std::string_view(text).substr(l_pos))) text.resize(l_pos);
      }
      Emit(TokenType::kText, std::move(text));
      pos_ = start + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      const int tag_line = line_;
      if (kind == TagKind::kComment) {
        line_starting = SkipComment(tag_line);
      } else {
        line_starting = LexTag(kind, tag_line);
      }
    }
    tokens_.push_back(Token{TokenType::kEof, "", 0, 0, line_});
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t from) const {
    for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1)) {
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    }
    return std::string::npos;
  }

  void Emit(TokenType type, std::string text) {
    if (type == TokenType::kText && text.empty()) return;
    Token t;
    t.type = type;
    t.line = line_;
    for (const char ch : text) line_ += ch == '\n';
    t.text = std::move(text);
    tokens_.push_back(std::move(t));
  }

  void Advance(size_t n) {
    for (size_t k = 0; k < n; ++k) line_ += src_[pos_ + k] == '\n';
    pos_ += n;
  }

  void SkipSpaces() {
    while (pos_ < src_.size()) {
      const size_t n = SpaceLength(src_, pos_);
      if (n == 0) break;
      Advance(n);
    }
  }

  bool StartsWith(std::string_view s) const { return src_.compare(pos_, s.size(), s) == 0; }

  // Consumes up to and including the comment end; returns whether that ended on "\n".
  bool SkipComment(int tag_line) {
    while (pos_ < src_.size()) {
      if (StartsWith("+#}")) {
        Advance(3);
        return false;
      }
      if (StartsWith("-#}")) {
        Advance(3);
        const size_t before = pos_;
        SkipSpaces();
        return pos_ > before && src_[pos_ - 1] == '\n';
      }
      if (StartsWith("#}")) {
        Advance(2);
        if (pos_ < src_.size() && src_[pos_] == '\n') {  // trim_blocks
          Advance(1);
          return true;
        }
        return false;
      }
      Advance(1);
    }
    Fail(tag_line, "missing end of comment tag '#}'");
  }

  // Tokens of a `{{ }}` or `{% %}` tag through its end; returns whether the end match
  // ended with "\n".
  bool LexTag(TagKind kind, int tag_line) {
    Emit(kind == TagKind::kVar ? TokenType::kVarBegin : TokenType::kBlockBegin, "");
    tokens_.back().text = kind == TagKind::kVar ? "{{" : "{%";
    std::string balance;  // closing brackets expected, innermost last
    const size_t first_token = tokens_.size();
    while (true) {
      SkipSpaces();
      if (pos_ >= src_.size())
        Fail(tag_line, fmt::format("unexpected end of template, expected '{}'", kind == TagKind::kVar ? "}}" : "%}"));
      if (balance.empty()) {
        if (kind == TagKind::kBlock) {
          if (StartsWith("+%}")) return EndTag(3, false, TokenType::kBlockEnd);
          if (StartsWith("-%}")) return EndTag(3, true, TokenType::kBlockEnd);
          if (StartsWith("%}")) {
            const bool trim = pos_ + 2 < src_.size() && src_[pos_ + 2] == '\n';
            Emit(TokenType::kBlockEnd, "");
            Advance(trim ? 3 : 2);
            return trim;
          }
        } else {
          if (StartsWith("-}}")) return EndTag(3, true, TokenType::kVarEnd);
          if (StartsWith("}}")) return EndTag(2, false, TokenType::kVarEnd);
        }
      }
      LexOne(&balance);
      if (kind == TagKind::kBlock && tokens_.size() == first_token + 1 && tokens_.back().type == TokenType::kName &&
          tokens_.back().text == "raw")
        Fail(tag_line, "'raw' blocks are not supported by nibble's chat-template engine");
    }
  }

  bool EndTag(size_t len, bool strip_after, TokenType type) {
    Emit(type, "");
    Advance(len);
    if (!strip_after) return false;
    const size_t before = pos_;
    SkipSpaces();
    return pos_ > before && src_[pos_ - 1] == '\n';
  }

  void LexOne(std::string* balance) {
    const char c = src_[pos_];
    const int line = line_;
    if (IsDigit(c)) return LexNumber();
    if (IsNameStart(c)) {
      size_t e = pos_;
      while (e < src_.size() && IsNameChar(src_[e])) ++e;
      Token t{TokenType::kName, src_.substr(pos_, e - pos_), 0, 0, line};
      tokens_.push_back(std::move(t));
      Advance(e - pos_);
      return;
    }
    if (c == '\'' || c == '"') return LexString(c);
    static constexpr const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "<",
                                           ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ".", ",", ":", "|", ";"};
    for (const char* op : kOps) {
      if (!StartsWith(op)) continue;
      const char o = op[0];
      if (std::strlen(op) == 1) {
        if (o == '(') *balance += ')';
        if (o == '[') *balance += ']';
        if (o == '{') *balance += '}';
        if (o == ')' || o == ']' || o == '}') {
          if (balance->empty()) Fail(line, fmt::format("unexpected '{}'", o));
          if (balance->back() != o) Fail(line, fmt::format("unexpected '{}', expected '{}'", o, balance->back()));
          balance->pop_back();
        }
      }
      tokens_.push_back(Token{TokenType::kOp, op, 0, 0, line});
      Advance(std::strlen(op));
      return;
    }
    Fail(line, fmt::format("unexpected character '{}'", EscapeChar(c)));
  }

  static std::string EscapeChar(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u >= 0x7f ? fmt::format("\\x{:02x}", u) : std::string(1, c);
  }

  // Digits with optional '_' separators, as Jinja's integer and float rules read them.
  size_t Digits(size_t p) const {
    const size_t start = p;
    while (p < src_.size() && (IsDigit(src_[p]) || (src_[p] == '_' && p > start && p + 1 < src_.size() &&
                                                      IsDigit(src_[p + 1]))))
      ++p;
    return p;
  }

  void LexNumber() {
    const int line = line_;
    size_t e = Digits(pos_);
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && IsDigit(src_[e + 1])) {
      e = Digits(e + 1);
      is_float = true;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t p = e + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && IsDigit(src_[p])) {
        e = Digits(p);
        is_float = true;
      }
    }
    std::string digits;
    for (size_t k = pos_; k < e; ++k)
      if (src_[k] != '_') digits += src_[k];
    Token t{is_float ? TokenType::kFloat : TokenType::kInt, digits, 0, 0, line};
    if (is_float) {
      t.f = std::strtod(digits.c_str(), nullptr);
    } else {
      for (const char d : digits) {
        if (t.i > (INT64_MAX - (d - '0')) / 10) Fail(line, fmt::format("integer literal {} is too large", digits));
        t.i = t.i * 10 + (d - '0');
      }
    }
    tokens_.push_back(std::move(t));
    Advance(e - pos_);
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A quoted string, unescaped as Python's "unicode-escape" codec does (Jinja's rule).
  void LexString(char quote) {
    const int line = line_;
    std::string value;
    size_t p = pos_ + 1;
    while (true) {
      if (p >= src_.size()) Fail(line, "unterminated string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) Fail(line, "unterminated string literal");
      const char e = src_[p + 1];
      p += 2;
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case '\n': break;  // a backslash-newline continues the line
        case 'x':
        case 'u':
        case 'U': {
          const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 0; k < n; ++k) {
            const int h = p < src_.size() ? Hex(src_[p]) : -1;
            if (h < 0) Fail(line, fmt::format("truncated \\{} escape in a string literal", e));
            cp = cp * 16 + static_cast<uint32_t>(h);
            ++p;
          }
          if (cp > 0x10FFFF) Fail(line, "\\U escape above U+10FFFF in a string literal");
          AppendCodePoint(&value, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k, ++p)
              cp = cp * 8 + static_cast<uint32_t>(src_[p] - '0');
            AppendCodePoint(&value, cp);
          } else if (e == 'N') {
            Fail(line, "\\N{...} escapes are not supported by nibble's chat-template engine");
          } else {
            value += '\\';  // Python keeps unknown escapes as written
            value += e;
          }
      }
    }
    tokens_.push_back(Token{TokenType::kString, std::move(value), 0, 0, line});
    Advance(p + 1 - pos_);
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Lex(std::string_view source) { return Lexer(source).Run(); }

}  // namespace nibble::tokenizer::jinja
