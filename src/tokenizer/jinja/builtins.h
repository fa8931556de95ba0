// The renderer's shared state and the built-ins it calls: filters, tests, attribute
// and item lookup, methods of str/dict, and the globals transformers defines
// (raise_exception, strftime_now, namespace, dict) plus Jinja's range.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace nibble::tokenizer::jinja {

// Work limits, so any template (a fuzzer's included) finishes quickly; real chat
// templates use a few thousand steps and bytes per message.
inline constexpr int64_t kMaxSteps = 1'000'000;  // evaluations and loop iterations
inline constexpr size_t kMaxStringBytes = 16u << 20;      // any string, the output included
inline constexpr int64_t kStepBytes = 64;                 // a string of n bytes costs n / 64 steps

[[noreturn]] void Fail(int line, const std::string& what);

// Per-render state: the namespace() arena and the work budget.
class State {
 public:
  Namespace* NewNamespace() {
    namespaces_.push_back(std::make_unique<Namespace>());
    return namespaces_.back().get();
  }
  void Step(int line, int64_t n = 1) {
    steps_ += n;
    if (steps_ > kMaxSteps)
      Fail(line, "rendering exceeds the work limit (a loop too long or strings too large for a chat template)");
  }
  void CheckSize(int line, size_t num_bytes) {
    if (num_bytes > kMaxStringBytes) Fail(line, "rendering produces a string larger than 16 MiB");
    Step(line, static_cast<int64_t>(num_bytes) / kStepBytes);
  }

 private:
  std::vector<std::unique_ptr<Namespace>> namespaces_;
  int64_t steps_ = 0;
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  int line = 1;
  // Positional `index` or keyword `name`, or null.
  const Value* Get(size_t index, std::string_view name) const;
};

Value ApplyFilter(State& st, std::string_view name, const Value& input, const CallArgs& args);
bool ApplyTest(State& st, std::string_view name, const Value& v, const std::vector<Value>& args, int line);
// Calls a callable value (a global or a bound method).
Value Call(State& st, const Value& callee, const CallArgs& args);
// obj.name (attribute first, then item, as Jinja's getattr) and obj[key] (item first).
Value GetAttr(const Value& obj, std::string_view name, int line);
Value GetItem(const Value& obj, const Value& key, int line);
Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line);
// Values a for loop walks: list items, dict keys, string characters.
std::vector<Value> Iterate(const Value& v, int line);
// The global callables: raise_exception, strftime_now, namespace, dict, range.
std::vector<std::pair<std::string, Value>> Globals();
// Python's `a % b` for str % args (only %s, %d, %i, %r, %% are supported).
std::string PercentFormat(const std::string& fmt_str, const Value& args, int line);

}  // namespace nibble::tokenizer::jinja
