// Recursive-descent parser for the chat-template subset, following the precedence of
// jinja2/parser.py: condexpr < or < and < not < compare < + - < ~ < * / // % < ** <
// unary < primary with postfix, filters and tests.
#include "tokenizer/jinja/parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

#include "nibble/error.h"

namespace nibble::tokenizer::jinja {
namespace {

// Nesting of expressions and statements; deeper templates are refused so a hostile
// template cannot exhaust the stack (real chat templates nest fewer than 10 levels).
constexpr int kMaxNesting = 100;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  Body Run() {
    std::string found;
    Body body = ParseBody({}, &found);
    return body;
  }

 private:
  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t ahead = 1) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  void Next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool IsOp(std::string_view op) const { return Cur().type == TokenType::kOp && Cur().text == op; }
  bool IsName(std::string_view n) const { return Cur().type == TokenType::kName && Cur().text == n; }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view n) {
    if (!IsName(n)) return false;
    Next();
    return true;
  }

  [[noreturn]] void Fail(const std::string& what) const {
    throw ConfigError(fmt::format("chat template line {}: {}", Cur().line, what));
  }

  std::string Describe(const Token& t) const {
    switch (t.type) {
      case TokenType::kEof:
        return "end of template";
      case TokenType::kText:
        return "template text";
      case TokenType::kVarEnd:
        return "'}}'";
      case TokenType::kBlockEnd:
        return "'%}'";
      case TokenType::kString:
        return "a string";
      case TokenType::kInt:
      case TokenType::kFloat:
        return "a number";
      default:
        return fmt::format("'{}'", t.text);
    }
  }

  void ExpectOp(std::string_view op) {
    if (!SkipOp(op)) Fail(fmt::format("expected '{}', found {}", op, Describe(Cur())));
  }
  void Expect(TokenType type, std::string_view what) {
    if (Cur().type != type) Fail(fmt::format("expected {}, found {}", what, Describe(Cur())));
    Next();
  }
  std::string ExpectName() {
    if (Cur().type != TokenType::kName) Fail(fmt::format("expected a name, found {}", Describe(Cur())));
    std::string n = Cur().text;
    Next();
    return n;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxNesting) p_->Fail(fmt::format("the template nests deeper than {} levels", kMaxNesting));
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  ExprPtr Make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Statements until `{% stop %}` for one of `stops` (left on the stop name) or EOF.
  Body ParseBody(std::initializer_list<std::string_view> stops, std::string* found) {
    DepthGuard guard(this);
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == TokenType::kEof) {
        if (stops.size() == 0) return body;
        std::string want;
        for (auto s : stops) want += (want.empty() ? "'" : " or '") + std::string(s) + "'";
        Fail(fmt::format("unexpected end of template, expected {}", want));
      }
      if (t.type == TokenType::kText) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kText;
        n->line = t.line;
        n->text = t.text;
        body.push_back(std::move(n));
        Next();
      } else if (t.type == TokenType::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kOutput;
        n->line = t.line;
        Next();
        n->expr = ParseTuple(true);
        Expect(TokenType::kVarEnd, "'}}'");
        body.push_back(std::move(n));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& name = Peek();
        if (name.type == TokenType::kName && std::find(stops.begin(), stops.end(), name.text) != stops.end()) {
          Next();
          *found = name.text;
          Next();
          return body;
        }
        Next();
        body.push_back(ParseStatement());
      } else {
        Fail(fmt::format("unexpected {}", Describe(t)));
      }
    }
  }

  std::unique_ptr<Node> ParseStatement() {
    DepthGuard guard(this);
    auto n = std::make_unique<Node>();
    n->line = Cur().line;
    if (Cur().type != TokenType::kName) Fail(fmt::format("expected a statement name, found {}", Describe(Cur())));
    const std::string kw = Cur().text;
    Next();
    std::string found;
    if (kw == "for") {
      n->kind = NodeKind::kFor;
      do {
        n->targets.push_back(ExpectName());
      } while (SkipOp(","));
      if (!SkipName("in")) Fail(fmt::format("expected 'in' in a for loop, found {}", Describe(Cur())));
      n->expr = ParseTuple(false);
      if (SkipName("if")) n->filter = ParseExpression(true);
      if (IsName("recursive")) Fail("recursive for loops are not supported by nibble's chat-template engine");
      Expect(TokenType::kBlockEnd, "'%}'");
      ++loop_depth_;
      n->bodies.push_back(ParseBody({"endfor", "else"}, &found));
      --loop_depth_;
      Expect(TokenType::kBlockEnd, "'%}'");
      if (found == "else") {
        n->bodies.push_back(ParseBody({"endfor"}, &found));
        Expect(TokenType::kBlockEnd, "'%}'");
      }
    } else if (kw == "if") {
      n->kind = NodeKind::kIf;
      n->conds.push_back(ParseTuple(false));
      Expect(TokenType::kBlockEnd, "'%}'");
      while (true) {
        n->bodies.push_back(ParseBody({"elif", "else", "endif"}, &found));
        if (found == "elif") {
          n->conds.push_back(ParseTuple(false));
          Expect(TokenType::kBlockEnd, "'%}'");
          continue;
        }
        Expect(TokenType::kBlockEnd, "'%}'");
        if (found == "else") {
          n->bodies.push_back(ParseBody({"endif"}, &found));
          Expect(TokenType::kBlockEnd, "'%}'");
        }
        break;
      }
    } else if (kw == "set") {
      n->targets.push_back(ExpectName());
      if (SkipOp(".")) {
        n->attr = ExpectName();
      } else {
        while (SkipOp(",")) n->targets.push_back(ExpectName());
      }
      if (SkipOp("=")) {
        n->kind = NodeKind::kSet;
        n->expr = ParseTuple(true);
        Expect(TokenType::kBlockEnd, "'%}'");
      } else {
        if (IsOp("|")) Fail("filtered set blocks are not supported by nibble's chat-template engine");
        if (n->targets.size() != 1 || !n->attr.empty()) Fail("a set block assigns exactly one name");
        Expect(TokenType::kBlockEnd, "'%}'");
        n->kind = NodeKind::kSetBlock;
        n->bodies.push_back(ParseBody({"endset"}, &found));
        Expect(TokenType::kBlockEnd, "'%}'");
      }
    } else if (kw == "break" || kw == "continue") {
      if (loop_depth_ == 0) Fail(fmt::format("'{}' outside of a loop", kw));
      n->kind = kw == "break" ? NodeKind::kBreak : NodeKind::kContinue;
      Expect(TokenType::kBlockEnd, "'%}'");
    } else if (kw == "generation") {
      n->kind = NodeKind::kGeneration;
      Expect(TokenType::kBlockEnd, "'%}'");
      n->bodies.push_back(ParseBody({"endgeneration"}, &found));
      Expect(TokenType::kBlockEnd, "'%}'");
    } else {
      static constexpr std::string_view kUnsupported[] = {"macro", "call",       "filter", "import", "include",
                                                          "extends", "block",   "from",   "with",   "autoescape",
                                                          "do",      "trans",   "print"};
      --pos_;
      if (std::find(std::begin(kUnsupported), std::end(kUnsupported), kw) != std::end(kUnsupported))
        Fail(fmt::format("'{}' statements are not supported by nibble's chat-template engine", kw));
      Fail(fmt::format("unknown or unexpected tag '{}'", kw));
    }
    return n;
  }

  // expression (',' expression)* as a tuple when there is a comma.
  ExprPtr ParseTuple(bool with_condexpr) {
    const int line = Cur().line;
    ExprPtr first = ParseExpression(with_condexpr);
    if (!IsOp(",")) return first;
    auto t = Make(ExprKind::kList, line);
    t->is_tuple = true;
    t->args.push_back(std::move(first));
    while (SkipOp(",")) {
      if (Cur().type == TokenType::kBlockEnd || Cur().type == TokenType::kVarEnd || IsOp(")") || IsOp("=")) break;
      t->args.push_back(ParseExpression(with_condexpr));
    }
    return t;
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    DepthGuard guard(this);
    ExprPtr e = ParseOr();
    if (!with_condexpr) return e;
    while (IsName("if")) {
      auto c = Make(ExprKind::kCond, Cur().line);
      Next();
      ExprPtr cond = ParseOr();
      ExprPtr other;
      if (SkipName("else")) other = ParseExpression(true);
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr Binary(ExprKind kind, std::string op, ExprPtr l, ExprPtr r, int line) {
    auto e = Make(kind, line);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr ParseOr() {
    ExprPtr e = ParseAnd();
    while (IsName("or")) {
      const int line = Cur().line;
      Next();
      e = Binary(ExprKind::kOr, "or", std::move(e), ParseAnd(), line);
    }
    return e;
  }

  ExprPtr ParseAnd() {
    ExprPtr e = ParseNot();
    while (IsName("and")) {
      const int line = Cur().line;
      Next();
      e = Binary(ExprKind::kAnd, "and", std::move(e), ParseNot(), line);
    }
    return e;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(this);
      auto e = Make(ExprKind::kNot, Cur().line);
      Next();
      e->args.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    const int line = Cur().line;
    ExprPtr first = ParseMath1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == TokenType::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == "<=" || Cur().text == ">" ||
           Cur().text == ">=")) {
        op = Cur().text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().type == TokenType::kName && Peek().text == "in") {
        op = "not in";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(ExprKind::kCompare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(ParseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  template <class Sub>
  ExprPtr LeftAssoc(std::initializer_list<std::string_view> ops, Sub sub) {
    ExprPtr e = sub();
    while (Cur().type == TokenType::kOp && std::find(ops.begin(), ops.end(), Cur().text) != ops.end()) {
      const int line = Cur().line;
      std::string op = Cur().text;
      Next();
      e = Binary(ExprKind::kBinary, std::move(op), std::move(e), sub(), line);
    }
    return e;
  }

  ExprPtr ParseMath1() {
    return LeftAssoc({"+", "-"}, [this] { return ParseConcat(); });
  }
  ExprPtr ParseConcat() {
    return LeftAssoc({"~"}, [this] { return ParseMath2(); });
  }
  ExprPtr ParseMath2() {
    return LeftAssoc({"*", "/", "//", "%"}, [this] { return ParsePow(); });
  }
  ExprPtr ParsePow() {
    return LeftAssoc({"**"}, [this] { return ParseUnary(true); });
  }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      e = Make(IsOp("-") ? ExprKind::kNeg : ExprKind::kPos, Cur().line);
      Next();
      e->args.push_back(ParseUnary(false));
    } else {
      e = ParsePrimary();
    }
    e = ParsePostfix(std::move(e));
    if (with_filter) e = ParseFilterExpr(std::move(e));
    return e;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    const int line = t.line;
    if (t.type == TokenType::kName) {
      auto e = Make(ExprKind::kLiteral, line);
      if (t.text == "true" || t.text == "True") {
        e->value = Value::Bool(true);
      } else if (t.text == "false" || t.text == "False") {
        e->value = Value::Bool(false);
      } else if (t.text == "none" || t.text == "None") {
        e->value = Value::None();
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
      }
      Next();
      return e;
    }
    if (t.type == TokenType::kString) {
      std::string s;
      while (Cur().type == TokenType::kString) {  // adjacent literals concatenate
        s += Cur().text;
        Next();
      }
      auto e = Make(ExprKind::kLiteral, line);
      e->value = Value::Str(std::move(s));
      return e;
    }
    if (t.type == TokenType::kInt || t.type == TokenType::kFloat) {
      auto e = Make(ExprKind::kLiteral, line);
      e->value = t.type == TokenType::kInt ? Value::Int(t.i) : Value::Float(t.f);
      Next();
      return e;
    }
    if (SkipOp("(")) {
      if (SkipOp(")")) {
        auto e = Make(ExprKind::kList, line);
        e->is_tuple = true;
        return e;
      }
      ExprPtr first = ParseExpression(true);
      if (SkipOp(")")) return first;
      auto e = Make(ExprKind::kList, line);
      e->is_tuple = true;
      e->args.push_back(std::move(first));
      while (SkipOp(",")) {
        if (IsOp(")")) break;
        e->args.push_back(ParseExpression(true));
      }
      ExpectOp(")");
      return e;
    }
    if (SkipOp("[")) {
      auto e = Make(ExprKind::kList, line);
      while (!IsOp("]")) {
        if (!e->args.empty()) ExpectOp(",");
        if (IsOp("]")) break;
        e->args.push_back(ParseExpression(true));
      }
      ExpectOp("]");
      return e;
    }
    if (SkipOp("{")) {
      auto e = Make(ExprKind::kDict, line);
      while (!IsOp("}")) {
        if (!e->args.empty()) ExpectOp(",");
        if (IsOp("}")) break;
        e->args.push_back(ParseExpression(true));
        ExpectOp(":");
        e->args.push_back(ParseExpression(true));
      }
      ExpectOp("}");
      return e;
    }
    Fail(fmt::format("unexpected {}", Describe(t)));
  }

  ExprPtr ParsePostfix(ExprPtr e) {
    while (true) {
      const int line = Cur().line;
      if (SkipOp(".")) {
        if (Cur().type == TokenType::kInt) {
          auto g = Make(ExprKind::kGetItem, line);
          auto idx = Make(ExprKind::kLiteral, line);
          idx->value = Value::Int(Cur().i);
          Next();
          g->args.push_back(std::move(e));
          g->args.push_back(std::move(idx));
          e = std::move(g);
        } else {
          auto g = Make(ExprKind::kGetAttr, line);
          g->name = ExpectName();
          g->args.push_back(std::move(e));
          e = std::move(g);
        }
      } else if (SkipOp("[")) {
        e = ParseSubscript(std::move(e), line);
      } else if (IsOp("(")) {
        e = ParseCall(std::move(e), ExprKind::kCall, "");
      } else {
        return e;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr obj, int line) {
    ExprPtr start, stop, step;
    if (!IsOp(":")) {
      start = ParseExpression(true);
      if (SkipOp("]")) {
        auto g = Make(ExprKind::kGetItem, line);
        g->args.push_back(std::move(obj));
        g->args.push_back(std::move(start));
        return g;
      }
    }
    ExpectOp(":");
    if (!IsOp("]") && !IsOp(":")) stop = ParseExpression(true);
    if (SkipOp(":") && !IsOp("]")) step = ParseExpression(true);
    ExpectOp("]");
    auto s = Make(ExprKind::kSlice, line);
    s->args.push_back(std::move(obj));
    s->args.push_back(std::move(start));
    s->args.push_back(std::move(stop));
    s->args.push_back(std::move(step));
    return s;
  }

  // `(args)` after a callee, filter or test; `first` becomes args[0].
  ExprPtr ParseCall(ExprPtr first, ExprKind kind, std::string name) {
    auto c = Make(kind, Cur().line);
    c->name = std::move(name);
    c->args.push_back(std::move(first));
    if (!SkipOp("(")) return c;
    while (!IsOp(")")) {
      if (c->args.size() + c->kwargs.size() > 1) ExpectOp(",");
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) Fail("*args and **kwargs in calls are not supported by nibble's chat-template engine");
      if (Cur().type == TokenType::kName && Peek().type == TokenType::kOp && Peek().text == "=") {
        std::string key = Cur().text;
        Next();
        Next();
        c->kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!c->kwargs.empty()) Fail("a positional argument follows a keyword argument");
        c->args.push_back(ParseExpression(true));
      }
    }
    ExpectOp(")");
    return c;
  }

  std::string DottedName() {
    std::string n = ExpectName();
    while (SkipOp(".")) n += "." + ExpectName();
    return n;
  }

  ExprPtr ParseFilterExpr(ExprPtr e) {
    while (true) {
      if (SkipOp("|")) {
        const int line = Cur().line;
        std::string name = DottedName();
        if (!IsKnownFilter(name))
          throw ConfigError(
              fmt::format("chat template line {}: filter '{}' is not supported by nibble's chat-template engine", line,
                          name));
        e = ParseCall(std::move(e), ExprKind::kFilter, std::move(name));
      } else if (IsName("is")) {
        Next();
        const bool negated = SkipName("not");
        const int line = Cur().line;
        std::string name = DottedName();
        if (!IsKnownTest(name))
          throw ConfigError(fmt::format(
              "chat template line {}: test '{}' is not supported by nibble's chat-template engine", line, name));
        ExprPtr t;
        const Token& c = Cur();
        const bool bare_arg = (c.type == TokenType::kName && c.text != "else" && c.text != "or" && c.text != "and" &&
                               c.text != "is") ||
                              c.type == TokenType::kString || c.type == TokenType::kInt ||
                              c.type == TokenType::kFloat || IsOp("[") || IsOp("{");
        if (IsOp("(")) {
          t = ParseCall(std::move(e), ExprKind::kTest, std::move(name));
        } else {
          t = Make(ExprKind::kTest, line);
          t->name = std::move(name);
          t->args.push_back(std::move(e));
          if (bare_arg) t->args.push_back(ParsePostfix(ParsePrimary()));
        }
        t->negated = negated;
        e = std::move(t);
      } else if (IsOp("(")) {
        e = ParseCall(std::move(e), ExprKind::kCall, "");
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body Parse(const std::vector<Token>& tokens) { return Parser(tokens).Run(); }

}  // namespace nibble::tokenizer::jinja
