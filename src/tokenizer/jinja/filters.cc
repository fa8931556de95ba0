// Jinja filters and tests of the chat-template subset, with jinja2 3.1's semantics
// (jinja2/filters.py, jinja2/tests.py) and transformers' tojson (json.dumps with
// ensure_ascii=False).
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "nibble/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/text.h"

namespace nibble::tokenizer::jinja {
namespace {

constexpr std::string_view kFilters[] = {
    "length", "count",      "trim",  "upper",   "lower",     "title", "capitalize", "default", "d",     "join",
    "tojson", "string",     "int",   "float",   "first",     "last",  "list",       "replace", "safe",  "items",
    "map",    "selectattr", "rejectattr", "select", "reject", "reverse", "abs"};
constexpr std::string_view kTests[] = {
    "defined", "undefined", "none",  "string", "mapping", "iterable", "number", "integer", "float", "boolean",
    "sequence", "true",     "false", "even",   "odd",     "divisibleby", "eq",  "equalto", "==",    "ne",
    "!=",       "lt",       "<",     "le",     "<=",      "gt",       ">",      "ge",      ">=",    "in",
    "callable", "sameas",   "lower", "upper"};

int64_t Len(const Value& v, int line) {
  switch (v.kind) {
    case Kind::kUndefined:
      return 0;
    case Kind::kString:
      return static_cast<int64_t>(CodePoints(v.s).size());
    case Kind::kList:
      return static_cast<int64_t>(v.list->size());
    case Kind::kDict:
      return static_cast<int64_t>(v.dict->size());
    default:
      Fail(line, fmt::format("object of type '{}' has no len()", TypeName(v)));
  }
}

int64_t AsInt(const Value& v, std::string_view what, int line) {
  if (v.kind == Kind::kInt) return v.i;
  if (v.kind == Kind::kBool) return v.b ? 1 : 0;
  Fail(line, fmt::format("{} must be an integer, got {}", what, TypeName(v)));
}

std::string ArgStr(const CallArgs& a, size_t index, std::string_view name, std::string fallback) {
  const Value* v = a.Get(index, name);
  return v == nullptr ? fallback : ToStr(*v);
}

// Python int(str): optional sign, digits with single '_' separators, surrounding spaces.
bool ParseInt(std::string_view text, int64_t* out) {
  const std::string s = Strip(text, std::nullopt, true, true);
  std::string digits;
  size_t k = 0;
  if (k < s.size() && (s[k] == '+' || s[k] == '-')) digits += s[k++];
  if (k == s.size()) return false;
  for (; k < s.size(); ++k) {
    if (s[k] >= '0' && s[k] <= '9') {
      digits += s[k];
    } else if (s[k] != '_' || k + 1 == s.size() || s[k + 1] == '_' || digits.empty() || digits.back() == '-' ||
               digits.back() == '+') {
      return false;
    }
  }
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(digits.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseFloat(std::string_view text, double* out) {
  const std::string s = Strip(text, std::nullopt, true, true);
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return *end == '\0';
}

// The value of a dotted attribute path for selectattr/map (item lookup first, as
// jinja2's make_attrgetter uses environment.getitem).
Value AttrPath(const Value& item, std::string_view path, int line) {
  Value v = item;
  for (const std::string& part : Split(path, std::string("."), -1)) {
    if (v.IsUndefined()) return v;
    int64_t idx = 0;
    v = ParseInt(part, &idx) ? GetItem(v, Value::Int(idx), line) : GetItem(v, Value::Str(part), line);
  }
  return v;
}

Value SelectOrReject(State& st, const Value& input, const CallArgs& a, bool by_attr, bool select) {
  std::vector<Value> rest(a.pos.begin() + (by_attr ? 1 : 0), a.pos.end());
  std::string attr;
  if (by_attr) {
    if (a.pos.empty()) Fail(a.line, "selectattr/rejectattr need an attribute name");
    attr = ToStr(a.pos[0]);
  }
  std::string test;
  if (!rest.empty()) {
    test = ToStr(rest.front());
    rest.erase(rest.begin());
    if (!IsKnownTest(test))
      Fail(a.line, fmt::format("test '{}' is not supported by nibble's chat-template engine", test));
  }
  List out;
  for (const Value& item : Iterate(input, a.line)) {
    st.Step(a.line);
    const Value v = by_attr ? AttrPath(item, attr, a.line) : item;
    const bool pass = test.empty() ? Truthy(v) : ApplyTest(st, test, v, rest, a.line);
    if (pass == select) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

Value Map(State& st, const Value& input, const CallArgs& a) {
  List out;
  const Value* attr = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, v] : a.kw) {
    if (k == "attribute") {
      attr = &v;
    } else if (k == "default") {
      dflt = &v;
    } else {
      Fail(a.line, fmt::format("map: unexpected keyword argument '{}'", k));
    }
  }
  if (attr == nullptr && a.pos.empty()) Fail(a.line, "map needs a filter name or attribute=");
  std::string filter;
  CallArgs fargs;
  fargs.line = a.line;
  if (attr == nullptr) {
    filter = ToStr(a.pos[0]);
    if (!IsKnownFilter(filter) || filter == "map")
      Fail(a.line, fmt::format("filter '{}' is not supported by nibble's chat-template engine", filter));
    fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
  }
  for (const Value& item : Iterate(input, a.line)) {
    st.Step(a.line);
    if (attr != nullptr) {
      Value v = AttrPath(item, ToStr(*attr), a.line);
      if (v.IsUndefined() && dflt != nullptr) v = *dflt;
      out.push_back(std::move(v));
    } else {
      out.push_back(ApplyFilter(st, filter, item, fargs));
    }
  }
  return Value::MakeList(std::move(out));
}

Value ToJsonFilter(const Value& v, const CallArgs& a) {
  int indent = -1;
  bool sort_keys = false;
  if (const Value* i = a.Get(0, "indent"); i != nullptr && i->kind != Kind::kNone)
    indent = static_cast<int>(std::clamp<int64_t>(AsInt(*i, "tojson indent", a.line), 0, 64));
  for (const auto& [k, val] : a.kw) {
    if (k == "sort_keys") {
      sort_keys = Truthy(val);
    } else if (k == "ensure_ascii" && !Truthy(val)) {
    } else if (k != "indent") {
      Fail(a.line, fmt::format("tojson argument '{}' is not supported by nibble's chat-template engine", k));
    }
  }
  if (a.pos.size() > 1) Fail(a.line, "tojson takes at most one positional argument (indent)");
  return Value::Str(ToJson(v, indent, sort_keys));
}

}  // namespace

bool IsKnownFilter(std::string_view name) { return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters); }
bool IsKnownTest(std::string_view name) { return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests); }

Value ApplyFilter(State& st, std::string_view name, const Value& v, const CallArgs& a) {
  const int line = a.line;
  if (name == "length" || name == "count") return Value::Int(Len(v, line));
  if (name == "trim") {
    const Value* chars = a.Get(0, "chars");
    std::optional<std::string> set;
    if (chars != nullptr && chars->kind != Kind::kNone) set = ToStr(*chars);
    return Value::Str(Strip(ToStr(v), set, true, true));
  }
  if (name == "upper") return Value::Str(Upper(ToStr(v)));
  if (name == "lower") return Value::Str(Lower(ToStr(v)));
  if (name == "title") return Value::Str(JinjaTitle(ToStr(v)));
  if (name == "capitalize") return Value::Str(Capitalize(ToStr(v)));
  if (name == "default" || name == "d") {
    const Value* dflt = a.Get(0, "default_value");
    const Value* boolean = a.Get(1, "boolean");
    const bool use = v.IsUndefined() || (boolean != nullptr && Truthy(*boolean) && !Truthy(v));
    if (!use) return v;
    return dflt != nullptr ? *dflt : Value::Str("");
  }
  if (name == "join") {
    const std::string sep = ArgStr(a, 0, "d", "");
    const Value* attr = a.Get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : Iterate(v, line)) {
      if (!first) out += sep;
      first = false;
      out += ToStr(attr != nullptr ? AttrPath(item, ToStr(*attr), line) : item);
      st.CheckSize(line, out.size());
    }
    return Value::Str(std::move(out));
  }
  if (name == "tojson") return ToJsonFilter(v, a);
  if (name == "string") return Value::Str(ToStr(v));
  if (name == "safe") return v;
  if (name == "int" || name == "float") {
    const Value* dflt = a.Get(0, "default");
    const bool want_int = name == "int";
    if (want_int && a.Get(1, "base") != nullptr) Fail(line, "int: the base argument is not supported");
    if (v.kind == Kind::kInt || v.kind == Kind::kBool)
      return want_int ? Value::Int(AsInt(v, "value", line)) : Value::Float(v.AsDouble());
    if (v.kind == Kind::kFloat) {
      if (!want_int) return v;
      if (std::isfinite(v.f) && std::fabs(v.f) < 9.2e18) return Value::Int(static_cast<int64_t>(v.f));
    } else if (v.kind == Kind::kString) {
      int64_t i = 0;
      double f = 0;
      if (want_int && ParseInt(v.s, &i)) return Value::Int(i);
      if (ParseFloat(v.s, &f)) {
        if (!want_int) return Value::Float(f);
        if (std::isfinite(f) && std::fabs(f) < 9.2e18) return Value::Int(static_cast<int64_t>(f));
      }
    }
    if (dflt != nullptr) return *dflt;
    return want_int ? Value::Int(0) : Value::Float(0.0);
  }
  if (name == "first" || name == "last") {
    const std::vector<Value> items = Iterate(v, line);
    if (items.empty()) return Value::Undefined(fmt::format("No {} item, sequence was empty.", name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::MakeList(Iterate(v, line));
  if (name == "reverse") {
    if (v.kind == Kind::kString) {
      std::vector<uint32_t> cps = CodePoints(v.s);
      std::reverse(cps.begin(), cps.end());
      return Value::Str(FromCodePoints(cps, 0, cps.size()));
    }
    std::vector<Value> items = Iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "replace") {
    const Value* count = a.Get(2, "count");
    const int64_t n = count == nullptr || count->kind == Kind::kNone ? -1 : AsInt(*count, "replace count", line);
    std::string out = Replace(ToStr(v), ArgStr(a, 0, "old", ""), ArgStr(a, 1, "new", ""), n);
    st.CheckSize(line, out.size());
    return Value::Str(std::move(out));
  }
  if (name == "items") {
    if (v.IsUndefined()) return Value::MakeList({});
    if (v.kind != Kind::kDict) Fail(line, fmt::format("items: expected a mapping, got {}", TypeName(v)));
    List out;
    for (const auto& [k, val] : *v.dict) out.push_back(Value::MakeList({Value::Str(k), val}, true));
    return Value::MakeList(std::move(out));
  }
  if (name == "abs") {
    if (v.kind == Kind::kFloat) return Value::Float(std::fabs(v.f));
    const int64_t i = AsInt(v, "abs input", line);
    if (i == INT64_MIN) Fail(line, "integer overflow in abs");
    return Value::Int(i < 0 ? -i : i);
  }
  if (name == "map") return Map(st, v, a);
  if (name == "selectattr" || name == "rejectattr") return SelectOrReject(st, v, a, true, name == "selectattr");
  if (name == "select" || name == "reject") return SelectOrReject(st, v, a, false, name == "select");
  Fail(line, fmt::format("filter '{}' is not supported by nibble's chat-template engine", name));
}

bool ApplyTest(State& st, std::string_view name, const Value& v, const std::vector<Value>& args, int line) {
  const auto arg = [&](size_t k) -> const Value& {
    if (args.size() <= k) Fail(line, fmt::format("test '{}' needs an argument", name));
    return args[k];
  };
  const bool is_int = v.kind == Kind::kInt;
  if (name == "defined") return !v.IsUndefined();
  if (name == "undefined") return v.IsUndefined();
  if (name == "none") return v.kind == Kind::kNone;
  if (name == "string") return v.kind == Kind::kString;
  if (name == "mapping") return v.kind == Kind::kDict;
  if (name == "iterable")
    return v.kind == Kind::kList || v.kind == Kind::kDict || v.kind == Kind::kString || v.IsUndefined();
  if (name == "sequence") return v.kind == Kind::kList || v.kind == Kind::kDict || v.kind == Kind::kString;
  if (name == "number") return v.IsNumber();
  if (name == "integer") return is_int;
  if (name == "float") return v.kind == Kind::kFloat;
  if (name == "boolean") return v.kind == Kind::kBool;
  if (name == "true") return v.kind == Kind::kBool && v.b;
  if (name == "false") return v.kind == Kind::kBool && !v.b;
  if (name == "callable") return v.kind == Kind::kCallable;
  if (name == "lower") return v.kind == Kind::kString && Lower(v.s) == v.s;
  if (name == "upper") return v.kind == Kind::kString && Upper(v.s) == v.s;
  if (name == "even" || name == "odd") {
    const int64_t i = AsInt(v, "even/odd input", line);
    return (i % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    const int64_t d = AsInt(arg(0), "divisibleby argument", line);
    if (d == 0) Fail(line, "integer division or modulo by zero");
    return d == -1 || AsInt(v, "divisibleby input", line) % d == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return Equal(v, arg(0));
  if (name == "ne" || name == "!=") return !Equal(v, arg(0));
  if (name == "lt" || name == "<") return Less(v, arg(0));
  if (name == "le" || name == "<=") return !Less(arg(0), v);
  if (name == "gt" || name == ">") return Less(arg(0), v);
  if (name == "ge" || name == ">=") return !Less(v, arg(0));
  if (name == "sameas") {
    const Value& o = arg(0);
    if (v.kind != o.kind) return false;
    if (v.kind == Kind::kNone || v.kind == Kind::kBool) return Equal(v, o);
    if (v.kind == Kind::kNamespace) return v.ns == o.ns;
    return false;
  }
  if (name == "in") {
    const Value& c = arg(0);
    if (c.kind == Kind::kString) {
      if (v.kind != Kind::kString) Fail(line, "'in <string>' requires string as left operand");
      return c.s.find(v.s) != std::string::npos;
    }
    for (const Value& item : Iterate(c, line)) {
      st.Step(line);
      if (Equal(item, v)) return true;
    }
    return false;
  }
  Fail(line, fmt::format("test '{}' is not supported by nibble's chat-template engine", name));
}

}  // namespace nibble::tokenizer::jinja
