// Malformed and unsupported tokenizer.json / tokenizer_config.json: each must throw
// FormatError (broken file) or ConfigError (a layout nibble does not run) whose
// message names the file and the JSON key. Reference: the key paths of the
// `tokenizers` serialization; exact substrings, no tolerance.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace nibble::tokenizer {
namespace {

using json = nlohmann::json;
constexpr const char* kSource = "bad/tokenizer.json";

// A valid byte-level file: "a", "b", "ab" and one merge; GPT-2 pre-tokenizer.
json ByteLevelBase() {
  return {{"added_tokens", json::array({{{"id", 3}, {"content", "<|end|>"}, {"special", true}}})},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", json::array({"a b"})}}}};
}

// A valid SentencePiece-style file (Llama 2 layout).
json SpmBase() {
  return {{"normalizer",
           {{"type", "Sequence"},
            {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}}},
          {"model",
           {{"type", "BPE"},
            {"byte_fallback", true},
            {"unk_token", "<unk>"},
            {"vocab", {{"<unk>", 0}, {"a", 1}, {"\xE2\x96\x81", 2}, {"\xE2\x96\x81" "a", 3}}},
            {"merges", json::array({json::array({"\xE2\x96\x81", "a"})})}}}};
}

template <class E>
void ExpectError(const std::string& text, const std::vector<std::string>& needles) {
  try {
    VocabFromTokenizerJson(text, kSource);
    ADD_FAILURE() << "no exception for: " << text.substr(0, 200);
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kSource), std::string::npos) << msg;
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

TEST(HfTokenizerErrorsTest, BasesAreValid) {
  EXPECT_EQ(VocabFromTokenizerJson(ByteLevelBase().dump(), kSource).size(), 4);
  const Vocab spm = VocabFromTokenizerJson(SpmBase().dump(), kSource);
  EXPECT_EQ(spm.model, VocabModel::kSpm);
  EXPECT_EQ(spm.scores[3], 0.0f);  // -rank of its merge
}

TEST(HfTokenizerErrorsTest, NotJson) {
  ExpectError<FormatError>("{\"model\": ", {"not valid JSON"});
  ExpectError<FormatError>("", {"not valid JSON"});
  ExpectError<FormatError>("[1, 2]", {"(top level)", "expected an object"});
}

TEST(HfTokenizerErrorsTest, MissingModel) {
  json j = ByteLevelBase();
  j.erase("model");
  ExpectError<FormatError>(j.dump(), {"'model'", "missing"});
  j = ByteLevelBase();
  j["model"].erase("vocab");
  ExpectError<FormatError>(j.dump(), {"'model.vocab'", "missing"});
  j = ByteLevelBase();
  j["model"].erase("merges");
  ExpectError<FormatError>(j.dump(), {"'model.merges'", "missing"});
}

TEST(HfTokenizerErrorsTest, WrongTypes) {
  json j = ByteLevelBase();
  j["model"]["vocab"] = json::array({"a", "b"});
  ExpectError<FormatError>(j.dump(), {"'model.vocab'", "expected an object", "array"});
  j = ByteLevelBase();
  j["model"]["vocab"]["a"] = "zero";
  ExpectError<FormatError>(j.dump(), {"model.vocab[\"a\"]", "token id", "string"});
  j = ByteLevelBase();
  j["model"]["vocab"]["a"] = -1;
  ExpectError<FormatError>(j.dump(), {"model.vocab[\"a\"]", "token id"});
  j = ByteLevelBase();
  j["model"]["merges"] = json::array({7});
  ExpectError<FormatError>(j.dump(), {"'model.merges[0]'", "number"});
  j = ByteLevelBase();
  j["added_tokens"][0]["special"] = "yes";
  ExpectError<FormatError>(j.dump(), {"'added_tokens[0].special'", "expected a boolean"});
  j = ByteLevelBase();
  j["pre_tokenizer"]["use_regex"] = 1;
  ExpectError<FormatError>(j.dump(), {"'pre_tokenizer.use_regex'", "boolean"});
}

TEST(HfTokenizerErrorsTest, MergeNamesUnknownPiece) {
  json j = ByteLevelBase();
  j["model"]["merges"] = json::array({"a b", "a c"});
  ExpectError<FormatError>(j.dump(), {"'model.merges[1]'", "'c' is not in model.vocab"});
  j = ByteLevelBase();
  j["model"]["merges"] = json::array({"b a"});  // "ba" is not a piece
  ExpectError<FormatError>(j.dump(), {"'model.merges[0]'", "merged piece 'ba'"});
  j = ByteLevelBase();
  j["model"]["merges"] = json::array({"a  b"});
  ExpectError<FormatError>(j.dump(), {"'model.merges[0]'", "exactly one space"});
  j = SpmBase();
  j["model"]["merges"] = json::array({json::array({"\xE2\x96\x81", "z"})});
  ExpectError<FormatError>(j.dump(), {"'model.merges[0]'", "'z' is not in model.vocab"});
}

TEST(HfTokenizerErrorsTest, IdsOutOfRangeOrDuplicated) {
  json j = ByteLevelBase();
  j["added_tokens"][0]["id"] = 99;
  ExpectError<FormatError>(j.dump(), {"'added_tokens[0].id'", "id 99 is outside the vocabulary"});
  j = ByteLevelBase();
  j["added_tokens"][0]["id"] = 4294967296LL;
  ExpectError<FormatError>(j.dump(), {"'added_tokens[0].id'", "token id"});
  j = ByteLevelBase();
  j["model"]["vocab"]["b"] = 0;
  ExpectError<FormatError>(j.dump(), {"id 0 is also given to"});
  j = ByteLevelBase();
  j["model"]["vocab"]["ab"] = 3;  // the added token restates id 3 and id 2 is left empty
  ExpectError<FormatError>(j.dump(), {"'model.vocab'", "no token has id 2"});
  j = SpmBase();
  j["model"]["unk_token"] = "<missing>";
  ExpectError<FormatError>(j.dump(), {"'model.unk_token'", "'<missing>' is not a token"});
}

TEST(HfTokenizerErrorsTest, UnsupportedLayoutsAreConfigErrors) {
  json j = ByteLevelBase();
  j["model"]["type"] = "Unigram";
  ExpectError<ConfigError>(j.dump(), {"'model.type'", "Unigram"});
  j = ByteLevelBase();
  const std::string pattern = R"(\p{L}+|\p{N}+|\s+)";
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         json::array({{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}},
                                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  ExpectError<ConfigError>(j.dump(), {"'pre_tokenizer.pretokenizers[0].pattern.Regex'", pattern, "unrecognised"});
  j = ByteLevelBase();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  ExpectError<ConfigError>(j.dump(), {"'pre_tokenizer.add_prefix_space'"});
  j = ByteLevelBase();
  j["model"]["ignore_merges"] = true;  // only the Llama 3 pre-tokenizer ignores merges
  ExpectError<ConfigError>(j.dump(), {"'model.ignore_merges'", "gpt-2"});
  j = ByteLevelBase();
  j["added_tokens"][0]["rstrip"] = true;
  ExpectError<ConfigError>(j.dump(), {"'added_tokens[0].rstrip'"});
  j = ByteLevelBase();
  j["normalizer"] = {{"type", "Lowercase"}};
  ExpectError<ConfigError>(j.dump(), {"'normalizer.type'", "Lowercase"});
  j = SpmBase();
  j["model"]["byte_fallback"] = false;
  ExpectError<ConfigError>(j.dump(), {"'model.byte_fallback'"});
  j = SpmBase();
  j["normalizer"]["normalizers"][0] = {{"type", "NFKC"}};
  ExpectError<ConfigError>(j.dump(), {"'normalizer.normalizers[0]'", "NFKC"});
  j = SpmBase();
  j.erase("normalizer");
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"add_prefix_space", true}};
  ExpectError<ConfigError>(j.dump(), {"'pre_tokenizer.split'"});
  // tokenizers 0.23.3 refuses this pair too ("add_prefix_space does not match declared
  // prepend_scheme").
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", "\xE2\x96\x81"},
                        {"split", false},
                        {"add_prefix_space", false},
                        {"prepend_scheme", "first"}};
  ExpectError<FormatError>(j.dump(), {"'pre_tokenizer.prepend_scheme'", "add_prefix_space"});
  j["pre_tokenizer"]["prepend_scheme"] = "sometimes";
  ExpectError<FormatError>(j.dump(), {"'pre_tokenizer.prepend_scheme'", "sometimes"});
}

TEST(HfTokenizerErrorsTest, TokenizerConfig) {
  Vocab v = VocabFromTokenizerJson(ByteLevelBase().dump(), kSource);
  const auto expect = [&](const std::string& text, const std::string& key, bool config_error) {
    try {
      ApplyTokenizerConfig(v, text, "bad/tokenizer_config.json");
      ADD_FAILURE() << "no exception for " << text;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(dynamic_cast<const ConfigError*>(&e) != nullptr, config_error) << msg;
      EXPECT_NE(msg.find("bad/tokenizer_config.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(key), std::string::npos) << msg;
    }
  };
  expect(R"({"bos_token": "<s>"})", "'bos_token'", true);  // not in the vocabulary
  expect(R"({"eos_token": 5})", "'eos_token'", false);
  expect(R"({"eos_token": {"lstrip": false}})", "'eos_token.content'", false);
  expect(R"({"add_bos_token": "true"})", "'add_bos_token'", false);
  expect(R"({"add_bos_token": true})", "add_bos_token", false);  // no bos token id: Validate
  expect("not json", "not valid JSON", false);
}

}  // namespace
}  // namespace nibble::tokenizer
