// Values of the Jinja2 subset nibble renders chat templates with: Python's None, bool,
// int, float, str, list/tuple, dict, plus Jinja's Undefined, namespace() objects and
// callables (globals and bound methods). Semantics follow Python/Jinja2 3.1.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace nibble::tokenizer::jinja {

struct Value;
using List = std::vector<Value>;
// A Python dict restricted to string keys (all that chat templates and JSON messages
// use), in insertion order as Python keeps it.
using Dict = std::vector<std::pair<std::string, Value>>;

enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

// A namespace() object: the one mutable value (`set ns.x = ...`). Owned by the render's
// arena, so a namespace stored inside itself makes no reference cycle.
struct Namespace {
  Dict attrs;
};

struct Value {
  Kind kind = Kind::kUndefined;
  bool is_tuple = false;  // kList: a tuple (only changes how it prints)
  bool b = false;
  int64_t i = 0;
  double f = 0;
  // kString: the text (UTF-8); kUndefined: what was looked up, for error messages;
  // kCallable: the function or method name.
  std::string s;
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  Namespace* ns = nullptr;
  std::shared_ptr<const Value> self;  // kCallable: the receiver of a bound method, or null

  static Value Undefined(std::string hint = {});
  static Value None();
  static Value Bool(bool v);
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value Str(std::string v);
  static Value MakeList(List v, bool tuple = false);
  static Value MakeDict(Dict v);
  static Value Callable(std::string name, std::shared_ptr<const Value> self = nullptr);

  bool IsUndefined() const { return kind == Kind::kUndefined; }
  bool IsNumber() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  double AsDouble() const { return kind == Kind::kFloat ? f : kind == Kind::kBool ? (b ? 1.0 : 0.0) : static_cast<double>(i); }
  // A dict's or namespace's entry, or null.
  const Value* Find(std::string_view key) const;
};

// Python truthiness (Undefined is false).
bool Truthy(const Value& v);
// Python str() (Undefined renders as ""); repr() as Python prints containers' items.
std::string ToStr(const Value& v);
std::string Repr(const Value& v);
// Python == (1 == 1.0, deep for containers; Undefined equals only Undefined).
bool Equal(const Value& a, const Value& b);
// Python <, for numbers and strings; throws ConfigError for other pairs.
bool Less(const Value& a, const Value& b);
// Python's type name, for error messages ("str", "int", "NoneType", "undefined").
std::string_view TypeName(const Value& v);

// Python float repr: shortest round-trip digits, "1.0", "1e+16", "1.5e-05".
std::string FloatRepr(double d);

// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=...) as transformers'
// tojson filter calls it; indent < 0 means None (", " and ": " separators).
std::string ToJson(const Value& v, int indent, bool sort_keys);

// JSON input (messages, extra variables) as values; objects keep their key order.
Value FromJson(const nlohmann::ordered_json& j);

}  // namespace nibble::tokenizer::jinja
