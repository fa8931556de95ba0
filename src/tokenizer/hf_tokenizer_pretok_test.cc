// nibble's PCRE2 pre-tokenizers against `tokenizers` 0.23.3 pre_tokenize_str with the
// real Llama 3 (Split regex + ByteLevel(use_regex=False)) and SmolLM2 (Digits +
// ByteLevel) pre-tokenizers, on ~170 varied lines (tests/golden/tokenizer/pretok_*.json
// from scripts/goldens/make_tokenizer_goldens.py). The golden also carries the
// pre_tokenizer JSON, so the test checks that VocabFromTokenizerJson maps it onto the
// same PreTokenizer. Tolerance: exact split strings (in the byte-level alphabet).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::tokenizer {
namespace {

using json = nlohmann::json;

// A minimal byte-level tokenizer.json around `pre_tokenizer`: the 256 byte characters.
PreTokenizer Recognise(const json& pre_tokenizer) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    const auto byte = static_cast<char>(b);
    ByteLevelEncode(std::string_view(&byte, 1), &ch);
    vocab[ch] = b;
  }
  const bool llama3 = pre_tokenizer.dump().find("Split") != std::string::npos;
  const json file = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}, {"ignore_merges", llama3}}},
                     {"pre_tokenizer", pre_tokenizer}};
  return VocabFromTokenizerJson(file.dump(), "pretok golden").pre;
}

void ExpectSameSplits(const std::string& golden_name, PreTokenizer expected_pre) {
  const json golden = json::parse(test::ReadFileText(test::Golden("tokenizer/" + golden_name)));
  ASSERT_EQ(Recognise(golden.at("pre_tokenizer")), expected_pre);
  const PreTokenizerRegexes re(expected_pre);
  const auto& texts = golden.at("texts");
  EXPECT_GE(texts.size(), 150u);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = RepairUtf8(texts[i].get<std::string>());
    std::vector<std::string_view> parts;
    re.Split(text, &parts);
    std::vector<std::string> spelled;
    for (std::string_view p : parts) {
      std::string s;
      ByteLevelEncode(p, &s);
      spelled.push_back(std::move(s));
    }
    EXPECT_EQ(spelled, golden.at("splits")[i].get<std::vector<std::string>>()) << "line " << i << ": '" << text << "'";
  }
}

TEST(HfPreTokenizerTest, Llama3MatchesTokenizers) { ExpectSameSplits("pretok_llama3.json", PreTokenizer::kLlama3); }

TEST(HfPreTokenizerTest, Smollm2MatchesTokenizers) { ExpectSameSplits("pretok_smollm2.json", PreTokenizer::kSmollm); }

}  // namespace
}  // namespace nibble::tokenizer
