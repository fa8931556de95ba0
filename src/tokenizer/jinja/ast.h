// Syntax tree of a parsed chat template: expressions and statements of the subset.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace nibble::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,  // value
  kName,     // name
  kList,     // args: items (is_tuple for tuples)
  kDict,     // kwargs: key expressions are args[2k], values args[2k+1]
  kGetAttr,  // args[0].name
  kGetItem,  // args[0][args[1]]
  kSlice,    // args[0][args[1]:args[2]:args[3]], absent bounds are null
  kCall,     // args[0](args[1:], kwargs)
  kFilter,   // args[0] | name(args[1:], kwargs)
  kTest,     // args[0] is [not] name(args[1:])
  kNeg,      // -args[0]
  kPos,      // +args[0]
  kNot,      // not args[0]
  kAnd,      // args[0] and args[1]
  kOr,       // args[0] or args[1]
  kBinary,   // args[0] name args[1] for + - * / // % ** ~
  kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ... (Python chains)
  kCond,     // args[1] if args[0] else args[2] (args[2] may be null: undefined)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 1;
  Value value;
  std::string name;
  bool negated = false;  // kTest: `is not`
  bool is_tuple = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", "<=", ">", ">=", "in", "not in"
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

enum class NodeKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // conds[k] -> bodies[k]; bodies.back() is the else body when it has one more
  kFor,       // for targets in expr [if filter] body [else else_body]
  kSet,       // set targets = expr, or set targets[0].attr = expr
  kSetBlock,  // {% set targets[0] %}body{% endset %}
  kBreak,
  kContinue,
  kGeneration,  // transformers' {% generation %}...{% endgeneration %}: renders body
};

struct Node {
  NodeKind kind = NodeKind::kText;
  int line = 1;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;                    // kFor: the `if` clause
  std::vector<ExprPtr> conds;        // kIf
  std::vector<Body> bodies;          // kIf branches; kFor/kSetBlock/kGeneration: bodies[0], kFor else: bodies[1]
  std::vector<std::string> targets;  // kFor / kSet names
  std::string attr;                  // kSet: namespace attribute
};

}  // namespace nibble::tokenizer::jinja
