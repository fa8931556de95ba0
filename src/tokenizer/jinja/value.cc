// Value construction and Python semantics of values: truthiness, str/repr, equality,
// ordering, float repr and json.dumps.
#include "tokenizer/jinja/value.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "nibble/error.h"
#include "tokenizer/jinja/text.h"

namespace nibble::tokenizer::jinja {
namespace {

// Containers nest at most this deep when printed or compared: a namespace can hold
// itself (`set ns.x = ns`), which Python prints with "..."; we refuse instead.
constexpr int kMaxValueDepth = 64;

void CheckDepth(int depth) {
  if (depth > kMaxValueDepth)
    throw ConfigError(fmt::format("chat template: a value nests deeper than {} levels", kMaxValueDepth));
}

std::string ReprStr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (const uint32_t c : CodePoints(s)) {
    if (c == static_cast<uint32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) {
      out += fmt::format("\\x{:02x}", c);  // Python's non-printable Latin-1 characters
    } else if (c == 0x2028 || c == 0x2029) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      AppendCodePoint(&out, c);
    }
  }
  out += quote;
  return out;
}

std::string ReprImpl(const Value& v, int depth);

std::string StrImpl(const Value& v, int depth) {
  CheckDepth(depth);
  switch (v.kind) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return v.b ? "True" : "False";
    case Kind::kInt:
      return std::to_string(v.i);
    case Kind::kFloat:
      return FloatRepr(v.f);
    case Kind::kString:
      return v.s;
    case Kind::kList: {
      std::string out = v.is_tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k > 0) out += ", ";
        out += ReprImpl((*v.list)[k], depth + 1);
      }
      if (v.is_tuple && v.list->size() == 1) out += ",";
      return out + (v.is_tuple ? ")" : "]");
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      const Dict& d = v.kind == Kind::kDict ? *v.dict : v.ns->attrs;
      std::string out = v.kind == Kind::kNamespace ? "<Namespace {" : "{";
      for (size_t k = 0; k < d.size(); ++k) {
        if (k > 0) out += ", ";
        out += ReprStr(d[k].first) + ": " + ReprImpl(d[k].second, depth + 1);
      }
      return out + (v.kind == Kind::kNamespace ? "}>" : "}");
    }
    case Kind::kCallable:
      return fmt::format("<function {}>", v.s);
  }
  return "";
}

std::string ReprImpl(const Value& v, int depth) {
  if (v.kind == Kind::kString) return ReprStr(v.s);
  return StrImpl(v, depth);
}

bool EqualImpl(const Value& a, const Value& b, int depth) {
  CheckDepth(depth);
  if (a.IsNumber() && b.IsNumber()) {
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) return a.AsDouble() == b.AsDouble();
    return (a.kind == Kind::kBool ? int64_t{a.b} : a.i) == (b.kind == Kind::kBool ? int64_t{b.b} : b.i);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return a.s == b.s;
    case Kind::kList:
      if (a.is_tuple != b.is_tuple || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!EqualImpl((*a.list)[k], (*b.list)[k], depth + 1)) return false;
      return true;
    case Kind::kDict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [key, val] : *a.dict) {
        const Value* other = b.Find(key);
        if (other == nullptr || !EqualImpl(val, *other, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kNamespace:
      return a.ns == b.ns;
    case Kind::kCallable:
      return a.s == b.s && a.self == b.self;
    default:
      return false;
  }
}

void JsonStr(std::string* out, std::string_view s) {
  *out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (c < 0x20)
          *out += fmt::format("\\u{:04x}", c);
        else
          *out += ch;
    }
  }
  *out += '"';
}

void JsonImpl(std::string* out, const Value& v, int indent, bool sort_keys, int depth) {
  CheckDepth(depth);
  const auto newline = [&](int level) {
    if (indent >= 0) *out += '\n' + std::string(static_cast<size_t>(indent * level), ' ');
  };
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.kind) {
    case Kind::kNone:
      *out += "null";
      return;
    case Kind::kBool:
      *out += v.b ? "true" : "false";
      return;
    case Kind::kInt:
      *out += std::to_string(v.i);
      return;
    case Kind::kFloat:
      *out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : FloatRepr(v.f);
      return;
    case Kind::kString:
      JsonStr(out, v.s);
      return;
    case Kind::kList: {
      if (v.list->empty()) {
        *out += "[]";
        return;
      }
      *out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k > 0) *out += item_sep;
        newline(depth + 1);
        JsonImpl(out, (*v.list)[k], indent, sort_keys, depth + 1);
      }
      newline(depth);
      *out += ']';
      return;
    }
    case Kind::kDict: {
      if (v.dict->empty()) {
        *out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* x, auto* y) { return x->first < y->first; });
      *out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k > 0) *out += item_sep;
        newline(depth + 1);
        JsonStr(out, items[k]->first);
        *out += ": ";
        JsonImpl(out, items[k]->second, indent, sort_keys, depth + 1);
      }
      newline(depth);
      *out += '}';
      return;
    }
    default:
      throw ConfigError(
          fmt::format("chat template: tojson: Object of type {} is not JSON serializable", TypeName(v)));
  }
}

}  // namespace

Value Value::Undefined(std::string hint) {
  Value v;
  v.s = std::move(hint);
  return v;
}
Value Value::None() {
  Value v;
  v.kind = Kind::kNone;
  return v;
}
Value Value::Bool(bool x) {
  Value v;
  v.kind = Kind::kBool;
  v.b = x;
  return v;
}
Value Value::Int(int64_t x) {
  Value v;
  v.kind = Kind::kInt;
  v.i = x;
  return v;
}
Value Value::Float(double x) {
  Value v;
  v.kind = Kind::kFloat;
  v.f = x;
  return v;
}
Value Value::Str(std::string x) {
  Value v;
  v.kind = Kind::kString;
  v.s = std::move(x);
  return v;
}
Value Value::MakeList(List x, bool tuple) {
  Value v;
  v.kind = Kind::kList;
  v.is_tuple = tuple;
  v.list = std::make_shared<const List>(std::move(x));
  return v;
}
Value Value::MakeDict(Dict x) {
  Value v;
  v.kind = Kind::kDict;
  v.dict = std::make_shared<const Dict>(std::move(x));
  return v;
}
Value Value::Callable(std::string name, std::shared_ptr<const Value> self) {
  Value v;
  v.kind = Kind::kCallable;
  v.s = std::move(name);
  v.self = std::move(self);
  return v;
}

const Value* Value::Find(std::string_view key) const {
  const Dict* d = kind == Kind::kDict ? dict.get() : kind == Kind::kNamespace ? &ns->attrs : nullptr;
  if (d == nullptr) return nullptr;
  for (const auto& kv : *d)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool Truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return v.b;
    case Kind::kInt:
      return v.i != 0;
    case Kind::kFloat:
      return v.f != 0;
    case Kind::kString:
      return !v.s.empty();
    case Kind::kList:
      return !v.list->empty();
    case Kind::kDict:
      return !v.dict->empty();
    default:
      return true;
  }
}

std::string ToStr(const Value& v) { return StrImpl(v, 0); }
std::string Repr(const Value& v) { return ReprImpl(v, 0); }
bool Equal(const Value& a, const Value& b) { return EqualImpl(a, b, 0); }

bool Less(const Value& a, const Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) return a.AsDouble() < b.AsDouble();
    return (a.kind == Kind::kBool ? int64_t{a.b} : a.i) < (b.kind == Kind::kBool ? int64_t{b.b} : b.i);
  }
  // UTF-8 byte order is code point order, which is how Python orders str.
  if (a.kind == Kind::kString && b.kind == Kind::kString) return a.s < b.s;
  throw ConfigError(fmt::format("chat template: '<' not supported between instances of '{}' and '{}'", TypeName(a),
                                TypeName(b)));
}

std::string_view TypeName(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return v.is_tuple ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // e.g. "-1.5e-05": shortest round-trip digits
  const size_t e_pos = sci.find('e');
  const bool neg = sci[0] == '-';
  std::string digits;
  for (size_t k = neg ? 1 : 0; k < e_pos; ++k)
    if (sci[k] != '.') digits += sci[k];
  const int exp10 = std::stoi(sci.substr(e_pos + 1));
  std::string out = neg ? "-" : "";
  // Python's repr switches to exponent notation outside 1e-4 <= |d| < 1e16.
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 >= 0) {
      const size_t int_len = static_cast<size_t>(exp10) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
  return out;
}

std::string ToJson(const Value& v, int indent, bool sort_keys) {
  std::string out;
  JsonImpl(&out, v, indent, sort_keys, 0);
  return out;
}

Value FromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::Str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      for (const auto& e : j) l.push_back(FromJson(e));
      return Value::MakeList(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, e] : j.items()) d.emplace_back(k, FromJson(e));
      return Value::MakeDict(std::move(d));
    }
    default:
      return Value::None();
  }
}

}  // namespace nibble::tokenizer::jinja
