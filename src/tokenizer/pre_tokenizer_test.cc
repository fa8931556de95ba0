// Pre-tokenizer regex lists. Reference: the splits each regex defines (derived by hand
// from the patterns, as Python's `regex` / HF tokenizers split them, and as llama.cpp's
// custom GPT-2 / Llama 3 splitters do); the concatenation invariant on varied text.
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nibble::tokenizer {
namespace {

std::vector<std::string> Split(PreTokenizer pre, std::string_view text) {
  const PreTokenizerRegexes re(pre);
  std::vector<std::string_view> parts;
  re.Split(text, &parts);
  return {parts.begin(), parts.end()};
}

using Parts = std::vector<std::string>;

TEST(PreTokenizerTest, Gpt2) {
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "Hello world's  123 !!\n"),
            (Parts{"Hello", " world", "'s", " ", " 123", " !!", "\n"}));
  // \p{L} covers non-Latin letters; digits of other scripts are \p{N}.
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "\xD0\xBC\xD0\xB8\xD1\x80 \xD9\xA3\xD9\xA4"),
            (Parts{"\xD0\xBC\xD0\xB8\xD1\x80", " \xD9\xA3\xD9\xA4"}));
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "a\t\tb"), (Parts{"a", "\t", "\t", "b"}));
}

TEST(PreTokenizerTest, Llama3GroupsDigitsAndNewlines) {
  EXPECT_EQ(Split(PreTokenizer::kLlama3, "12345"), (Parts{"123", "45"}));
  EXPECT_EQ(Split(PreTokenizer::kLlama3, "Hello\n\nworld"), (Parts{"Hello", "\n\n", "world"}));
  EXPECT_EQ(Split(PreTokenizer::kLlama3, "I'M (ok)"), (Parts{"I", "'M", " (", "ok", ")"}));
}

TEST(PreTokenizerTest, SmollmSplitsEveryDigit) {
  EXPECT_EQ(Split(PreTokenizer::kSmollm, "abc 2024"), (Parts{"abc", " ", "2", "0", "2", "4"}));
}

TEST(PreTokenizerTest, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "x 12"), (Parts{"x", " ", "1", "2"}));
}

TEST(PreTokenizerTest, FragmentsConcatenateToTheInput) {
  const std::string text =
      "  Mixed: caf\xC3\xA9, \xE4\xB8\xAD\xE6\x96\x87, 3.14159, emoji \xF0\x9F\xA6\x99!\r\n\ttabs   end  ";
  for (PreTokenizer pre : {PreTokenizer::kDefault, PreTokenizer::kGpt2, PreTokenizer::kLlama3, PreTokenizer::kSmollm,
                           PreTokenizer::kQwen2}) {
    std::string joined;
    for (const std::string& p : Split(pre, text)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, text) << PreTokenizerName(pre);
  }
  EXPECT_TRUE(Split(PreTokenizer::kGpt2, "").empty());
}

}  // namespace
}  // namespace nibble::tokenizer
