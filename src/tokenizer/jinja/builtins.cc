// Attribute/item lookup, slicing, iteration, str and dict methods and the globals of
// the chat-template subset (Python and jinja2 3.1 semantics; globals as transformers
// defines them in chat_template_utils._compile_jinja_template).
#include "tokenizer/jinja/builtins.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "nibble/error.h"
#include "tokenizer/jinja/text.h"

namespace nibble::tokenizer::jinja {
namespace {

constexpr std::string_view kStrMethods[] = {"strip", "lstrip", "rstrip",     "startswith", "endswith", "split",
                                            "upper", "lower",  "title",      "capitalize", "replace",  "find",
                                            "count", "join",   "isdigit",    "isspace"};
constexpr std::string_view kDictMethods[] = {"get", "items", "keys", "values"};
constexpr std::string_view kGlobals[] = {"raise_exception", "strftime_now", "namespace", "dict", "range"};

template <size_t N>
bool In(const std::string_view (&set)[N], std::string_view name) {
  return std::find(std::begin(set), std::end(set), name) != std::end(set);
}

// Python's index normalisation for a[i]: negative counts from the end.
bool NormIndex(int64_t i, int64_t n, int64_t* out) {
  if (i < 0) i += n;
  if (i < 0 || i >= n) return false;
  *out = i;
  return true;
}

int64_t IntArg(const Value& v, std::string_view what, int line) {
  if (v.kind == Kind::kInt) return v.i;
  if (v.kind == Kind::kBool) return v.b ? 1 : 0;
  Fail(line, fmt::format("{} must be an integer, got {}", what, TypeName(v)));
}

void CheckNamespaceName(std::string_view name, int line) {
  if (!name.empty() && name[0] == '_')
    Fail(line, fmt::format("chat templates cannot store underscore-prefixed attributes on a namespace, got '{}'", name));
}

Value StrMethod(State& st, const std::string& s, std::string_view name, const CallArgs& a) {
  const int line = a.line;
  const auto opt_str = [&](size_t k, std::string_view kw) -> std::optional<std::string> {
    const Value* v = a.Get(k, kw);
    if (v == nullptr || v->kind == Kind::kNone) return std::nullopt;
    if (v->kind != Kind::kString) Fail(line, fmt::format("str.{}: expected a string argument, got {}", name, TypeName(*v)));
    return v->s;
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value::Str(Strip(s, opt_str(0, "chars"), name != "rstrip", name != "lstrip"));
  if (name == "upper") return Value::Str(Upper(s));
  if (name == "lower") return Value::Str(Lower(s));
  if (name == "title") return Value::Str(PyTitle(s));
  if (name == "capitalize") return Value::Str(Capitalize(s));
  if (name == "isdigit") return Value::Bool(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
  if (name == "isspace") {
    const std::vector<uint32_t> cps = CodePoints(s);
    return Value::Bool(!cps.empty() && std::all_of(cps.begin(), cps.end(), IsPySpace));
  }
  if (name == "startswith" || name == "endswith") {
    if (a.pos.size() != 1) Fail(line, fmt::format("str.{} takes exactly one argument", name));
    std::vector<Value> prefixes;
    if (a.pos[0].kind == Kind::kList && a.pos[0].is_tuple) {
      prefixes = *a.pos[0].list;
    } else {
      prefixes.push_back(a.pos[0]);
    }
    for (const Value& p : prefixes) {
      if (p.kind != Kind::kString) Fail(line, fmt::format("str.{}: expected a string, got {}", name, TypeName(p)));
      const bool hit = name == "startswith" ? s.compare(0, p.s.size(), p.s) == 0
                                            : s.size() >= p.s.size() && s.compare(s.size() - p.s.size(), p.s.size(), p.s) == 0;
      if (hit) return Value::Bool(true);
    }
    return Value::Bool(false);
  }
  if (name == "split") {
    const std::optional<std::string> sep = opt_str(0, "sep");
    if (sep && sep->empty()) Fail(line, "str.split: empty separator");
    const Value* maxsplit = a.Get(1, "maxsplit");
    List out;
    for (auto& piece : Split(s, sep, maxsplit == nullptr ? -1 : IntArg(*maxsplit, "maxsplit", line))) {
      st.Step(line);
      out.push_back(Value::Str(std::move(piece)));
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "replace") {
    const std::optional<std::string> from = opt_str(0, "old"), to = opt_str(1, "new");
    if (!from || !to) Fail(line, "str.replace needs two string arguments");
    const Value* count = a.Get(2, "count");
    std::string out = Replace(s, *from, *to, count == nullptr ? -1 : IntArg(*count, "count", line));
    st.CheckSize(line, out.size());
    return Value::Str(std::move(out));
  }
  if (name == "find" || name == "count") {
    const std::optional<std::string> sub = opt_str(0, "sub");
    if (!sub || a.pos.size() != 1) Fail(line, fmt::format("str.{} takes exactly one string argument", name));
    if (name == "find") {
      const size_t at = s.find(*sub);
      return Value::Int(at == std::string::npos ? -1 : static_cast<int64_t>(CodePoints(s.substr(0, at)).size()));
    }
    if (sub->empty()) return Value::Int(static_cast<int64_t>(CodePoints(s).size()) + 1);
    int64_t n = 0;
    for (size_t at = s.find(*sub); at != std::string::npos; at = s.find(*sub, at + sub->size())) ++n;
    return Value::Int(n);
  }
  if (name == "join") {
    if (a.pos.size() != 1) Fail(line, "str.join takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& item : Iterate(a.pos[0], line)) {
      if (item.kind != Kind::kString) Fail(line, fmt::format("str.join: expected str items, got {}", TypeName(item)));
      if (!first) out += s;
      first = false;
      out += item.s;
      st.CheckSize(line, out.size());
    }
    return Value::Str(std::move(out));
  }
  Fail(line, fmt::format("str.{} is not supported by nibble's chat-template engine", name));
}

Value DictMethod(const Value& d, std::string_view name, const CallArgs& a) {
  if (name == "get") {
    if (a.pos.empty() || a.pos.size() > 2) Fail(a.line, "dict.get takes one or two arguments");
    if (a.pos[0].kind == Kind::kString)
      if (const Value* v = d.Find(a.pos[0].s)) return *v;
    return a.pos.size() == 2 ? a.pos[1] : Value::None();
  }
  List out;
  for (const auto& [k, v] : *d.dict) {
    if (name == "items") out.push_back(Value::MakeList({Value::Str(k), v}, true));
    if (name == "keys") out.push_back(Value::Str(k));
    if (name == "values") out.push_back(v);
  }
  return Value::MakeList(std::move(out));
}

Value Range(State& st, const CallArgs& a) {
  if (a.pos.empty() || a.pos.size() > 3 || !a.kw.empty()) Fail(a.line, "range takes one to three positional arguments");
  int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) {
    stop = IntArg(a.pos[0], "range argument", a.line);
  } else {
    start = IntArg(a.pos[0], "range argument", a.line);
    stop = IntArg(a.pos[1], "range argument", a.line);
    if (a.pos.size() == 3) step = IntArg(a.pos[2], "range argument", a.line);
  }
  if (step == 0) Fail(a.line, "range() arg 3 must not be zero");
  List out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    st.Step(a.line);
    out.push_back(Value::Int(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return Value::MakeList(std::move(out));
}

Value CallGlobal(State& st, std::string_view name, const CallArgs& a) {
  const int line = a.line;
  if (name == "raise_exception") {
    const std::string msg = a.pos.empty() ? std::string() : ToStr(a.pos[0]);
    throw ConfigError(fmt::format("chat template line {}: the template raised an error: {}", line, msg));
  }
  if (name == "strftime_now") {
    if (a.pos.size() != 1 || a.pos[0].kind != Kind::kString) Fail(line, "strftime_now takes one format string");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), a.pos[0].s.c_str(), &tm);
    return Value::Str(std::string(buf, n));
  }
  if (name == "range") return Range(st, a);
  if (name == "namespace" || name == "dict") {
    Dict attrs;
    const auto put = [&](const std::string& k, const Value& v) {
      if (name == "namespace") CheckNamespaceName(k, line);
      for (auto& kv : attrs)
        if (kv.first == k) {
          kv.second = v;
          return;
        }
      attrs.emplace_back(k, v);
    };
    if (a.pos.size() > 1) Fail(line, fmt::format("{}() takes at most one positional argument", name));
    if (!a.pos.empty()) {
      if (a.pos[0].kind != Kind::kDict) Fail(line, fmt::format("{}(): expected a dict, got {}", name, TypeName(a.pos[0])));
      for (const auto& [k, v] : *a.pos[0].dict) put(k, v);
    }
    for (const auto& [k, v] : a.kw) put(k, v);
    if (name == "dict") return Value::MakeDict(std::move(attrs));
    Value v;
    v.kind = Kind::kNamespace;
    v.ns = st.NewNamespace();
    v.ns->attrs = std::move(attrs);
    return v;
  }
  Fail(line, fmt::format("'{}' is not callable", name));
}

}  // namespace

void Fail(int line, const std::string& what) {
  throw ConfigError(fmt::format("chat template line {}: {}", line, what));
}

const Value* CallArgs::Get(size_t index, std::string_view name) const {
  if (index < pos.size()) return &pos[index];
  for (const auto& kv : kw)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

Value GetAttr(const Value& obj, std::string_view name, int line) {
  if (obj.kind == Kind::kDict && In(kDictMethods, name))
    return Value::Callable(std::string(name), std::make_shared<const Value>(obj));
  if (obj.kind == Kind::kString && In(kStrMethods, name))
    return Value::Callable(std::string(name), std::make_shared<const Value>(obj));
  if (obj.kind == Kind::kDict || obj.kind == Kind::kNamespace) {
    if (const Value* v = obj.Find(name)) return *v;
  }
  (void)line;
  return Value::Undefined(fmt::format("'{}' has no attribute '{}'", TypeName(obj), name));
}

Value GetItem(const Value& obj, const Value& key, int line) {
  if (obj.kind == Kind::kDict || obj.kind == Kind::kNamespace) {
    if (key.kind == Kind::kString) {
      if (const Value* v = obj.Find(key.s)) return *v;
      if (obj.kind == Kind::kNamespace) return GetAttr(obj, key.s, line);
    }
    return Value::Undefined(fmt::format("'{}' has no item {}", TypeName(obj), Repr(key)));
  }
  if ((obj.kind == Kind::kList || obj.kind == Kind::kString) && (key.kind == Kind::kInt || key.kind == Kind::kBool)) {
    const int64_t raw = key.kind == Kind::kBool ? int64_t{key.b} : key.i;
    int64_t i = 0;
    if (obj.kind == Kind::kList) {
      if (NormIndex(raw, static_cast<int64_t>(obj.list->size()), &i)) return (*obj.list)[static_cast<size_t>(i)];
    } else {
      const std::vector<uint32_t> cps = CodePoints(obj.s);
      if (NormIndex(raw, static_cast<int64_t>(cps.size()), &i))
        return Value::Str(FromCodePoints(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
    }
    return Value::Undefined(fmt::format("{} index out of range", TypeName(obj)));
  }
  if (key.kind == Kind::kString) return GetAttr(obj, key.s, line);
  return Value::Undefined(fmt::format("'{}' has no item {}", TypeName(obj), Repr(key)));
}

Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line) {
  const auto bound = [&](const Value& v, bool* given) -> int64_t {
    *given = !(v.IsUndefined() || v.kind == Kind::kNone);
    return *given ? IntArg(v, "slice index", line) : 0;
  };
  bool has_start = false, has_stop = false, has_step = false;
  int64_t b = bound(start, &has_start), e = bound(stop, &has_stop), s = bound(step, &has_step);
  if (!has_step) s = 1;
  if (s == 0) Fail(line, "slice step cannot be zero");
  if (s == INT64_MIN) s = -INT64_MAX;
  std::vector<uint32_t> cps;
  int64_t n = 0;
  if (obj.kind == Kind::kString) {
    cps = CodePoints(obj.s);
    n = static_cast<int64_t>(cps.size());
  } else if (obj.kind == Kind::kList) {
    n = static_cast<int64_t>(obj.list->size());
  } else {
    Fail(line, fmt::format("'{}' object is not subscriptable with a slice", TypeName(obj)));
  }
  // CPython's PySlice_AdjustIndices.
  const auto adjust = [&](int64_t v, bool given, int64_t dflt) {
    if (!given) return dflt;
    if (v < 0) {
      v += n;
      if (v < 0) v = s < 0 ? -1 : 0;
    } else if (v >= n) {
      v = s < 0 ? n - 1 : n;
    }
    return v;
  };
  b = adjust(b, has_start, s < 0 ? n - 1 : 0);
  e = adjust(e, has_stop, s < 0 ? -1 : n);
  std::vector<size_t> idx;
  const int64_t count = s > 0 ? (e > b ? (e - b - 1) / s + 1 : 0) : (b > e ? (b - e - 1) / -s + 1 : 0);
  for (int64_t k = 0; k < count; ++k) idx.push_back(static_cast<size_t>(b + k * s));
  if (obj.kind == Kind::kString) {
    std::string out;
    for (const size_t i : idx) AppendCodePoint(&out, cps[i]);
    return Value::Str(std::move(out));
  }
  List out;
  for (const size_t i : idx) out.push_back((*obj.list)[i]);
  return Value::MakeList(std::move(out), obj.is_tuple);
}

std::vector<Value> Iterate(const Value& v, int line) {
  std::vector<Value> out;
  switch (v.kind) {
    case Kind::kUndefined:
      return out;
    case Kind::kList:
      return *v.list;
    case Kind::kDict:
      for (const auto& kv : *v.dict) out.push_back(Value::Str(kv.first));
      return out;
    case Kind::kString: {
      const std::vector<uint32_t> cps = CodePoints(v.s);
      for (size_t k = 0; k < cps.size(); ++k) out.push_back(Value::Str(FromCodePoints(cps, k, k + 1)));
      return out;
    }
    default:
      Fail(line, fmt::format("'{}' object is not iterable", TypeName(v)));
  }
}

std::vector<std::pair<std::string, Value>> Globals() {
  std::vector<std::pair<std::string, Value>> out;
  for (const std::string_view name : kGlobals) out.emplace_back(std::string(name), Value::Callable(std::string(name)));
  return out;
}

Value Call(State& st, const Value& callee, const CallArgs& a) {
  if (callee.kind != Kind::kCallable) Fail(a.line, fmt::format("'{}' object is not callable", TypeName(callee)));
  if (callee.self == nullptr) return CallGlobal(st, callee.s, a);
  const Value& self = *callee.self;
  if (self.kind == Kind::kString) return StrMethod(st, self.s, callee.s, a);
  return DictMethod(self, callee.s, a);
}

std::string PercentFormat(const std::string& f, const Value& args, int line) {
  std::vector<Value> items;
  if (args.kind == Kind::kList && args.is_tuple) {
    items = *args.list;
  } else {
    items.push_back(args);
  }
  std::string out;
  size_t next = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    if (f[k] != '%') {
      out += f[k];
      continue;
    }
    if (k + 1 >= f.size()) Fail(line, "incomplete format in a '%' string format");
    const char c = f[++k];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (c != 's' && c != 'd' && c != 'i' && c != 'r')
      Fail(line, fmt::format("'%{}' in a '%' string format is not supported by nibble's chat-template engine", c));
    if (next >= items.size()) Fail(line, "not enough arguments for format string");
    const Value& v = items[next++];
    if (c == 's') {
      out += ToStr(v);
    } else if (c == 'r') {
      out += Repr(v);
    } else if (v.kind == Kind::kFloat) {
      if (!(std::fabs(v.f) < 9.2e18)) Fail(line, "%d format argument out of range");
      out += std::to_string(static_cast<int64_t>(v.f));
    } else {
      out += std::to_string(IntArg(v, "%d format argument", line));
    }
  }
  if (next < items.size()) Fail(line, "not all arguments converted during string formatting");
  return out;
}

}  // namespace nibble::tokenizer::jinja
