// Rendering a parsed chat template: statements (scopes as jinja2 3.1 has them: a
// fresh scope per loop iteration, `if` adds none) and expression evaluation with
// Python's operators and Jinja's Undefined rules.
#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "nibble/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/template.h"
#include "tokenizer/jinja/text.h"

namespace nibble::tokenizer::jinja {
namespace {

enum class Flow { kNormal, kBreak, kContinue };

[[noreturn]] void FailUndefined(const Value& v, int line) {
  Fail(line, v.s.empty() ? std::string("a value is undefined") : v.s);
}

bool CheckedAdd(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }
bool CheckedSub(int64_t a, int64_t b, int64_t* out) { return !__builtin_sub_overflow(a, b, out); }
bool CheckedMul(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }

int64_t AsInt(const Value& v) { return v.kind == Kind::kBool ? int64_t{v.b} : v.i; }

class Renderer {
 public:
  explicit Renderer(std::string* out) : out_(out) {}

  void PushScope() { scopes_.emplace_back(); }
  void PopScope() { scopes_.pop_back(); }
  void Define(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  Flow Exec(const Body& body) {
    for (const auto& n : body) {
      const Flow f = ExecNode(*n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

 private:
  void Emit(std::string_view s, int line) {
    *out_ += s;
    st_.CheckSize(line, out_->size());
  }

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value::Undefined(fmt::format("'{}' is undefined", name));
  }

  void Assign(const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) {
      Define(targets[0], v);
      return;
    }
    if (v.kind != Kind::kList && v.kind != Kind::kString)
      Fail(line, fmt::format("cannot unpack non-sequence {}", TypeName(v)));
    const std::vector<Value> items = Iterate(v, line);
    if (items.size() != targets.size())
      Fail(line, fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
    for (size_t k = 0; k < targets.size(); ++k) Define(targets[k], items[k]);
  }

  Flow ExecNode(const Node& n) {
    st_.Step(n.line);
    switch (n.kind) {
      case NodeKind::kText:
        Emit(n.text, n.line);
        return Flow::kNormal;
      case NodeKind::kOutput:
        Emit(ToStr(Eval(*n.expr)), n.line);
        return Flow::kNormal;
      case NodeKind::kIf:
        for (size_t k = 0; k < n.conds.size(); ++k)
          if (Truthy(Eval(*n.conds[k]))) return Exec(n.bodies[k]);
        if (n.bodies.size() > n.conds.size()) return Exec(n.bodies.back());
        return Flow::kNormal;
      case NodeKind::kFor:
        ExecFor(n);
        return Flow::kNormal;
      case NodeKind::kSet: {
        const Value v = Eval(*n.expr);
        if (n.attr.empty()) {
          Assign(n.targets, v, n.line);
          return Flow::kNormal;
        }
        const Value target = Lookup(n.targets[0]);
        if (target.kind != Kind::kNamespace)
          Fail(n.line, fmt::format("cannot assign attribute '{}' on a non-namespace object '{}'", n.attr, n.targets[0]));
        if (!n.attr.empty() && n.attr[0] == '_')
          Fail(n.line, fmt::format("chat templates cannot store underscore-prefixed attributes on a namespace, got '{}'",
                                   n.attr));
        for (auto& kv : target.ns->attrs)
          if (kv.first == n.attr) {
            kv.second = v;
            return Flow::kNormal;
          }
        target.ns->attrs.emplace_back(n.attr, v);
        return Flow::kNormal;
      }
      case NodeKind::kSetBlock: {
        std::string captured;
        std::string* saved = out_;
        out_ = &captured;
        Exec(n.bodies[0]);
        out_ = saved;
        Define(n.targets[0], Value::Str(std::move(captured)));
        return Flow::kNormal;
      }
      case NodeKind::kBreak:
        return Flow::kBreak;
      case NodeKind::kContinue:
        return Flow::kContinue;
      case NodeKind::kGeneration:
        return Exec(n.bodies[0]);
    }
    return Flow::kNormal;
  }

  void ExecFor(const Node& n) {
    const Value seq = Eval(*n.expr);
    std::vector<Value> items = Iterate(seq, n.line);
    if (n.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        st_.Step(n.line);
        PushScope();
        Assign(n.targets, item, n.line);
        const bool keep = Truthy(Eval(*n.filter));
        PopScope();
        if (keep) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const auto len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      st_.Step(n.line);
      PushScope();
      Dict loop = {{"index", Value::Int(k + 1)},       {"index0", Value::Int(k)},
                   {"revindex", Value::Int(len - k)},  {"revindex0", Value::Int(len - k - 1)},
                   {"first", Value::Bool(k == 0)},     {"last", Value::Bool(k == len - 1)},
                   {"length", Value::Int(len)},        {"depth", Value::Int(1)},
                   {"depth0", Value::Int(0)}};
      if (k > 0) loop.emplace_back("previtem", items[static_cast<size_t>(k - 1)]);
      if (k + 1 < len) loop.emplace_back("nextitem", items[static_cast<size_t>(k + 1)]);
      Define("loop", Value::MakeDict(std::move(loop)));
      Assign(n.targets, items[static_cast<size_t>(k)], n.line);
      const Flow f = Exec(n.bodies[0]);
      PopScope();
      if (f == Flow::kBreak) break;
    }
    if (len == 0 && n.bodies.size() > 1) Exec(n.bodies[1]);
  }

  CallArgs EvalArgs(const Expr& e, size_t first) {
    CallArgs a;
    a.line = e.line;
    for (size_t k = first; k < e.args.size(); ++k) a.pos.push_back(Eval(*e.args[k]));
    for (const auto& [key, expr] : e.kwargs) a.kw.emplace_back(key, Eval(*expr));
    return a;
  }

  Value Eval(const Expr& e) {
    st_.Step(e.line);
    Value v = EvalImpl(e);
    if (v.kind == Kind::kString) st_.CheckSize(e.line, v.s.size());
    return v;
  }

  Value EvalImpl(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.value;
      case ExprKind::kName:
        return Lookup(e.name);
      case ExprKind::kList: {
        List items;
        for (const auto& a : e.args) items.push_back(Eval(*a));
        return Value::MakeList(std::move(items), e.is_tuple);
      }
      case ExprKind::kDict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = Eval(*e.args[k]);
          if (key.kind != Kind::kString)
            Fail(e.line, fmt::format("dict keys must be strings in nibble's chat-template engine, got {}", TypeName(key)));
          Value val = Eval(*e.args[k + 1]);
          bool replaced = false;
          for (auto& kv : d)
            if (kv.first == key.s) {
              kv.second = val;
              replaced = true;
            }
          if (!replaced) d.emplace_back(key.s, std::move(val));
        }
        return Value::MakeDict(std::move(d));
      }
      case ExprKind::kGetAttr: {
        const Value obj = Eval(*e.args[0]);
        if (obj.IsUndefined()) FailUndefined(obj, e.line);
        return GetAttr(obj, e.name, e.line);
      }
      case ExprKind::kGetItem: {
        const Value obj = Eval(*e.args[0]);
        if (obj.IsUndefined()) FailUndefined(obj, e.line);
        return GetItem(obj, Eval(*e.args[1]), e.line);
      }
      case ExprKind::kSlice: {
        const Value obj = Eval(*e.args[0]);
        if (obj.IsUndefined()) FailUndefined(obj, e.line);
        const auto bound = [&](size_t k) { return e.args[k] ? Eval(*e.args[k]) : Value::None(); };
        return Slice(obj, bound(1), bound(2), bound(3), e.line);
      }
      case ExprKind::kCall: {
        const Value callee = Eval(*e.args[0]);
        if (callee.IsUndefined()) FailUndefined(callee, e.line);
        return Call(st_, callee, EvalArgs(e, 1));
      }
      case ExprKind::kFilter:
        return ApplyFilter(st_, e.name, Eval(*e.args[0]), EvalArgs(e, 1));
      case ExprKind::kTest: {
        const Value v = Eval(*e.args[0]);
        const CallArgs a = EvalArgs(e, 1);
        return Value::Bool(ApplyTest(st_, e.name, v, a.pos, e.line) != e.negated);
      }
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        const Value v = Eval(*e.args[0]);
        if (v.IsUndefined()) FailUndefined(v, e.line);
        if (!v.IsNumber()) Fail(e.line, fmt::format("bad operand type for unary {}: '{}'", e.kind == ExprKind::kNeg ? '-' : '+', TypeName(v)));
        if (e.kind == ExprKind::kPos) return v.kind == Kind::kBool ? Value::Int(AsInt(v)) : v;
        if (v.kind == Kind::kFloat) return Value::Float(-v.f);
        if (AsInt(v) == INT64_MIN) Fail(e.line, "integer overflow");
        return Value::Int(-AsInt(v));
      }
      case ExprKind::kNot:
        return Value::Bool(!Truthy(Eval(*e.args[0])));
      case ExprKind::kAnd: {
        Value l = Eval(*e.args[0]);
        return Truthy(l) ? Eval(*e.args[1]) : l;
      }
      case ExprKind::kOr: {
        Value l = Eval(*e.args[0]);
        return Truthy(l) ? l : Eval(*e.args[1]);
      }
      case ExprKind::kBinary:
        return Binary(e.name, Eval(*e.args[0]), Eval(*e.args[1]), e.line);
      case ExprKind::kCompare:
        return Compare(e);
      case ExprKind::kCond:
        if (Truthy(Eval(*e.args[0]))) return Eval(*e.args[1]);
        return e.args[2] ? Eval(*e.args[2]) : Value::Undefined("the condition of an inline if was false and it has no else");
    }
    return Value::Undefined();
  }

  bool Contains(const Value& container, const Value& item, int line) {
    if (container.kind == Kind::kString) {
      if (item.kind != Kind::kString)
        Fail(line, fmt::format("'in <string>' requires string as left operand, not {}", TypeName(item)));
      return container.s.find(item.s) != std::string::npos;
    }
    if (container.kind == Kind::kUndefined) return false;
    if (container.kind != Kind::kList && container.kind != Kind::kDict)
      Fail(line, fmt::format("argument of type '{}' is not iterable", TypeName(container)));
    for (const Value& x : Iterate(container, line)) {
      st_.Step(line);
      if (Equal(x, item)) return true;
    }
    return false;
  }

  Value Compare(const Expr& e) {
    Value left = Eval(*e.args[0]);
    for (size_t k = 0; k < e.ops.size(); ++k) {
      Value right = Eval(*e.args[k + 1]);
      const std::string& op = e.ops[k];
      bool r = false;
      if (op == "==") {
        r = Equal(left, right);
      } else if (op == "!=") {
        r = !Equal(left, right);
      } else if (op == "in" || op == "not in") {
        r = Contains(right, left, e.line) == (op == "in");
      } else {
        if (left.IsUndefined()) FailUndefined(left, e.line);
        if (right.IsUndefined()) FailUndefined(right, e.line);
        if (op == "<") r = Less(left, right);
        if (op == "<=") r = !Less(right, left);
        if (op == ">") r = Less(right, left);
        if (op == ">=") r = !Less(left, right);
      }
      if (!r) return Value::Bool(false);
      left = std::move(right);
    }
    return Value::Bool(true);
  }

  Value Repeat(const Value& seq, int64_t n, int line) {
    if (n <= 0) return seq.kind == Kind::kString ? Value::Str("") : Value::MakeList({}, seq.is_tuple);
    const size_t unit = seq.kind == Kind::kString ? seq.s.size() : seq.list->size() * sizeof(Value);
    if (unit != 0 && static_cast<uint64_t>(n) > kMaxStringBytes / unit) st_.CheckSize(line, kMaxStringBytes + 1);
    if (seq.kind == Kind::kString) {
      std::string out;
      for (int64_t k = 0; k < n; ++k) out += seq.s;
      return Value::Str(std::move(out));
    }
    List out;
    for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
    return Value::MakeList(std::move(out), seq.is_tuple);
  }

  Value Binary(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "~") {
      std::string s = ToStr(a) + ToStr(b);
      return Value::Str(std::move(s));
    }
    if (a.IsUndefined()) FailUndefined(a, line);
    if (b.IsUndefined()) FailUndefined(b, line);
    const bool nums = a.IsNumber() && b.IsNumber();
    const bool ints = nums && a.kind != Kind::kFloat && b.kind != Kind::kFloat;
    int64_t r = 0;
    if (op == "+") {
      if (ints) {
        if (!CheckedAdd(AsInt(a), AsInt(b), &r)) Fail(line, "integer overflow");
        return Value::Int(r);
      }
      if (nums) return Value::Float(a.AsDouble() + b.AsDouble());
      if (a.kind == Kind::kString && b.kind == Kind::kString) {
        st_.CheckSize(line, a.s.size() + b.s.size());
        return Value::Str(a.s + b.s);
      }
      if (a.kind == Kind::kList && b.kind == Kind::kList && a.is_tuple == b.is_tuple) {
        List l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        return Value::MakeList(std::move(l), a.is_tuple);
      }
    } else if (op == "-") {
      if (ints) {
        if (!CheckedSub(AsInt(a), AsInt(b), &r)) Fail(line, "integer overflow");
        return Value::Int(r);
      }
      if (nums) return Value::Float(a.AsDouble() - b.AsDouble());
    } else if (op == "*") {
      if (ints) {
        if (!CheckedMul(AsInt(a), AsInt(b), &r)) Fail(line, "integer overflow");
        return Value::Int(r);
      }
      if (nums) return Value::Float(a.AsDouble() * b.AsDouble());
      if ((a.kind == Kind::kString || a.kind == Kind::kList) && (b.kind == Kind::kInt || b.kind == Kind::kBool))
        return Repeat(a, AsInt(b), line);
      if ((b.kind == Kind::kString || b.kind == Kind::kList) && (a.kind == Kind::kInt || a.kind == Kind::kBool))
        return Repeat(b, AsInt(a), line);
    } else if (op == "/") {
      if (nums) {
        if (b.AsDouble() == 0) Fail(line, "division by zero");
        return Value::Float(a.AsDouble() / b.AsDouble());
      }
    } else if (op == "//" || op == "%") {
      if (op == "%" && a.kind == Kind::kString) return Value::Str(PercentFormat(a.s, b, line));
      if (ints) {
        const int64_t x = AsInt(a), y = AsInt(b);
        if (y == 0) Fail(line, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) Fail(line, "integer overflow");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward -inf
          --q;
          m += y;
        }
        return Value::Int(op == "//" ? q : m);
      }
      if (nums) {
        const double x = a.AsDouble(), y = b.AsDouble();
        if (y == 0) Fail(line, "float division or modulo by zero");
        if (op == "//") return Value::Float(std::floor(x / y));
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value::Float(m);
      }
    } else if (op == "**") {
      if (ints && AsInt(b) >= 0) {
        int64_t acc = 1, base = AsInt(a), exp = AsInt(b);  // square-and-multiply
        while (exp > 0) {
          if ((exp & 1) && !CheckedMul(acc, base, &acc)) Fail(line, "integer overflow");
          exp >>= 1;
          if (exp > 0 && !CheckedMul(base, base, &base)) Fail(line, "integer overflow");
        }
        return Value::Int(acc);
      }
      if (nums) return Value::Float(std::pow(a.AsDouble(), b.AsDouble()));
    }
    Fail(line, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, TypeName(a), TypeName(b)));
  }

  std::string* out_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  State st_;
};

}  // namespace

Template Template::Parse(std::string_view source) {
  Template t;
  t.body_ = std::make_shared<const Body>(jinja::Parse(Lex(source)));
  return t;
}

std::string Template::Render(const nlohmann::ordered_json& vars) const {
  std::string out;
  Renderer r(&out);
  r.PushScope();
  for (auto& [name, v] : Globals()) r.Define(name, std::move(v));
  if (vars.is_object())
    for (const auto& [k, v] : vars.items()) r.Define(k, FromJson(v));
  r.PushScope();  // the template's own top-level variables
  r.Exec(*body_);
  return out;
}

}  // namespace nibble::tokenizer::jinja
