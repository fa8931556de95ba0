// The Jinja engine against jinja2 3.1.6 as transformers configures it: every expected
// string in tests/golden/chat/expressions.json was rendered by jinja2 (see
// scripts/goldens/make_chat_goldens.py); cases where jinja2 raises must raise
// ConfigError here. Plus nibble's own refusals (constructs outside the subset, work
// limits), which have no jinja2 counterpart.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nibble/error.h"
#include "tokenizer/jinja/template.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::tokenizer::jinja {
namespace {

// Rendered text is compared byte for byte: a prompt that differs in one space or
// newline tokenizes differently, so there is no tolerance.
constexpr size_t kTolBytes = 0;

// Byte positions where a and b differ, the length difference included.
size_t DiffBytes(const std::string& a, const std::string& b) {
  size_t n = std::max(a.size(), b.size()) - std::min(a.size(), b.size());
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) n += a[k] != b[k];
  return n;
}

std::string Render(const std::string& tmpl, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  return Template::Parse(tmpl).Render(vars);
}

// Expects ConfigError whose message contains every one of `parts`.
void ExpectConfigError(const std::string& tmpl, const std::vector<std::string>& parts,
                       const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  try {
    const std::string out = Render(tmpl, vars);
    ADD_FAILURE() << "no ConfigError for " << tmpl << "; rendered: " << out;
  } catch (const ConfigError& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks '" << p << "'";
  }
}

TEST(JinjaTest, ExpressionsMatchJinja2) {
  const auto cases =
      nlohmann::ordered_json::parse(test::ReadFileText(test::Golden("chat/expressions.json")));
  ASSERT_GT(cases.size(), 30u);
  for (const auto& c : cases) {
    const std::string tmpl = c["template"].get<std::string>();
    SCOPED_TRACE(tmpl);
    if (c.contains("expected")) {
      const std::string want = c["expected"].get<std::string>();
      std::string got;
      try {
        got = Render(tmpl, c["vars"]);
      } catch (const ConfigError& e) {
        ADD_FAILURE() << "ConfigError: " << e.what();
        continue;
      }
      EXPECT_LE(DiffBytes(got, want), kTolBytes) << "got:  " << got << "\nwant: " << want;
    } else {
      // jinja2 raised (its message is in "error"): nibble must refuse too.
      EXPECT_THROW(Render(tmpl, c["vars"]), ConfigError) << c["error"];
    }
  }
}

TEST(JinjaTest, RaiseExceptionMessageSurfaces) {
  ExpectConfigError("line one\n{{ raise_exception('Roles must alternate!') }}",
                    {"line 2", "Roles must alternate!"});
}

TEST(JinjaTest, UnsupportedConstructsNameTheirLine) {
  ExpectConfigError("ok\n{% macro m() %}x{% endmacro %}", {"line 2", "macro", "not supported"});
  ExpectConfigError("{% call foo() %}{% endcall %}", {"line 1", "call"});
  ExpectConfigError("\n\n{% include 'other.jinja' %}", {"line 3", "include"});
  ExpectConfigError("{% import 'x' as y %}", {"import"});
  ExpectConfigError("{% extends 'base' %}", {"extends"});
  ExpectConfigError("{% filter upper %}x{% endfilter %}", {"filter"});
  ExpectConfigError("a\n{{ 'x' | wordcount }}", {"line 2", "filter 'wordcount'"});
  ExpectConfigError("{{ 1 is prime }}", {"test 'prime'"});
  ExpectConfigError("{% for x in [1] recursive %}{% endfor %}", {"recursive"});
  ExpectConfigError("{% raw %}{{ x }}{% endraw %}", {"raw"});
  ExpectConfigError("{{ [1] | map('wordcount') | list }}", {"wordcount"});
  ExpectConfigError("{{ 'a'.format(1) }}", {"line 1"});  // str.format is not a supported method
  ExpectConfigError("{% break %}", {"outside of a loop"});
  ExpectConfigError("{% endfor %}", {"line 1", "endfor"});
}

TEST(JinjaTest, UndefinedBehavesLikeJinjaDefault) {
  EXPECT_EQ(Render("[{{ nope }}]{% if nope %}t{% else %}f{% endif %}{% for x in nope %}x{% endfor %}"), "[]f");
  EXPECT_EQ(Render("{{ nope is defined }}|{{ nope is undefined }}|{{ nope | default('d') }}"), "False|True|d");
  ExpectConfigError("{{ nope.attr }}", {"'nope' is undefined"});
  ExpectConfigError("{{ nope + 'x' }}", {"'nope' is undefined"});
  ExpectConfigError("{{ nope() }}", {"'nope' is undefined"});
}

TEST(JinjaTest, WorkLimitsStopHostileTemplates) {
  ExpectConfigError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                    {"work limit"});
  ExpectConfigError("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                    "{% endfor %}{{ ns.s | length }}",
                    {"line 1", "rendering"});  // the byte-weighted work limit or the 16 MiB cap, whichever first
  ExpectConfigError("{{ 'x' * 100000000 }}", {"16 MiB"});
  ExpectConfigError("{{ " + std::string(400, '(') + "1" + std::string(400, ')') + " }}", {"nests deeper"});
  ExpectConfigError("{{ " + std::string(200, '[') + std::string(200, ']') + " }}", {"nests deeper"});
  ExpectConfigError("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", {"nests deeper"});
  ExpectConfigError("{{ 9223372036854775807 + 1 }}", {"overflow"});
  ExpectConfigError("{{ 2 ** 64 }}", {"overflow"});
  ExpectConfigError("{% set ns = namespace() %}{% set ns._secret = 1 %}", {"underscore"});
}

TEST(JinjaTest, SyntaxErrorsNameTheirLine) {
  ExpectConfigError("a\nb\n{{ 'unterminated }}", {"line 3"});
  ExpectConfigError("{% if x %}\nno end", {"unexpected end of template", "endif"});
  ExpectConfigError("{{ (1 }}", {"line 1"});
  ExpectConfigError("{# never closed", {"comment"});
  ExpectConfigError("{{ 1 2 }}", {"line 1"});
}

}  // namespace
}  // namespace nibble::tokenizer::jinja
