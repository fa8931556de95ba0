// PCRE2-backed pre-tokenizer regex lists (patterns as llama.cpp lists them per
// LLAMA_VOCAB_PRE_TYPE; the originals come from each model's tokenizer.json).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <fmt/core.h>
#include <pcre2.h>

#include <array>
#include <iterator>
#include <string>

#include "core/check.h"
#include "nibble/error.h"
#include "tokenizer/utf8.h"

namespace nibble::tokenizer {
namespace {

// OpenAI GPT-2 (encoder.py). llama.cpp drops the final "|\s+" and keeps unmatched
// text as fragments, which splits identically: a lone whitespace before a
// non-space is the only text "\s+(?!\S)" leaves, and it becomes one fragment either way.
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 with "(?i:'s|...)" spelled case by case, as llama.cpp does (PR 6920).
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kDigit = R"(\p{N})";

std::vector<std::string_view> PatternsFor(PreTokenizer pre) {
  switch (pre) {
    case PreTokenizer::kDefault:
      return {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"};
    case PreTokenizer::kGpt2:
      return {kGpt2};
    case PreTokenizer::kLlama3:
      return {kLlama3};
    case PreTokenizer::kSmollm:
      return {kDigit, kGpt2};
    case PreTokenizer::kQwen2:
      return {kQwen2};
  }
  NB_CHECK(false, "PreTokenizer {} has no regex list", static_cast<int>(pre));
  return {};
}

}  // namespace

struct PreTokenizerRegexes::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizerRegexes::PreTokenizerRegexes(PreTokenizer pre) {
  for (std::string_view pattern : PatternsFor(pre)) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto c = std::make_unique<Compiled>();
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                            &error, &error_offset, nullptr);
    if (c->code == nullptr) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(error, msg.data(), msg.size());
      NB_CHECK(false, "pre-tokenizer regex '{}' does not compile at {}: {}", pattern, error_offset,
               reinterpret_cast<const char*>(msg.data()));
    }
    // JIT gives the same matches, only faster; without it (no JIT support) the
    // interpreter runs the same pattern.
    c->jit = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE) == 0;
    regexes_.push_back(std::move(c));
  }
}

PreTokenizerRegexes::~PreTokenizerRegexes() = default;
PreTokenizerRegexes::PreTokenizerRegexes(PreTokenizerRegexes&&) noexcept = default;
PreTokenizerRegexes& PreTokenizerRegexes::operator=(PreTokenizerRegexes&&) noexcept = default;

void PreTokenizerRegexes::Split(std::string_view text, std::vector<std::string_view>* out) const {
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  if (text.empty()) return;
  for (const auto& re : regexes_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re->code, nullptr);
    NB_CHECK(md != nullptr, "pcre2_match_data_create_from_pattern failed (out of memory)");
    next.clear();
    for (std::string_view frag : current) {
      // Each fragment is its own subject, so lookarounds stop at its ends as in llama.cpp.
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(frag.data());
      size_t start = 0, gap_begin = 0;
      while (start < frag.size()) {
        int rc = re->jit ? pcre2_jit_match(re->code, subject, frag.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr)
                         : PCRE2_ERROR_JIT_BADOPTION;
        // The interpreter takes over where JIT is missing or its stack is too small.
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
          rc = pcre2_match(re->code, subject, frag.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc <= 0) {
          pcre2_match_data_free(md);
          std::array<PCRE2_UCHAR, 256> msg{};
          pcre2_get_error_message(rc, msg.data(), msg.size());
          throw ShapeError(fmt::format("pre-tokenizer: regex match failed on a text fragment of {} bytes: {}",
                                       frag.size(), reinterpret_cast<const char*>(msg.data())));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t m_begin = ov[0], m_end = ov[1];
        if (m_end == m_begin) {  // no list pattern matches empty; step over one character
          start = m_begin + Utf8CharLength(frag, m_begin);
          continue;
        }
        if (m_begin > gap_begin) next.push_back(frag.substr(gap_begin, m_begin - gap_begin));
        next.push_back(frag.substr(m_begin, m_end - m_begin));
        gap_begin = start = m_end;
      }
      if (gap_begin < frag.size()) next.push_back(frag.substr(gap_begin));
    }
    pcre2_match_data_free(md);
    current.swap(next);
  }
  out->insert(out->end(), current.begin(), current.end());
}

}  // namespace nibble::tokenizer
