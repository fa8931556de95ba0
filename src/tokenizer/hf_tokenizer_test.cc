// tokenizer.json → Vocab → Tokenizer against Hugging Face `tokenizers` 0.23.3 (the
// oracle): ids, ids with special tokens and decoded text recorded per line by
// scripts/goldens/make_tokenizer_goldens.py (tests/golden/tokenizer/ids_*.json) for
// GPT-2 (the shared tokenizer.json), tok512.model converted to the two SentencePiece
// layouts (Metaspace also with prepend_scheme "always" and "never"), and byte-level
// files with the Llama 3 and SmolLM2 pre-tokenizers.
// Tolerance: exact ids and exact text.
#include "tokenizer/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::tokenizer {
namespace {

using json = nlohmann::json;

json ReadGolden(const std::string& name) { return json::parse(test::ReadFileText(test::Golden("tokenizer/" + name))); }

Tokenizer LoadJson(const std::string& path) {
  return Tokenizer(VocabFromTokenizerJson(test::ReadFileText(path), path), path);
}

// Runs every golden line through `tok`.
void ExpectMatchesGolden(const Tokenizer& tok, const json& golden) {
  const auto& texts = golden.at("texts");
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    // tokenizers matches every added token in the text, special or not: parse_special.
    const std::vector<int32_t> ids = tok.Encode(text, /*add_special=*/false, /*parse_special=*/true);
    EXPECT_EQ(ids, golden.at("ids")[i].get<std::vector<int32_t>>()) << "line " << i << ": '" << text << "'";
    EXPECT_EQ(tok.Encode(text, true, true), golden.at("ids_special")[i].get<std::vector<int32_t>>())
        << "line " << i << ": '" << text << "'";
    EXPECT_EQ(tok.Decode(ids), golden.at("decoded")[i].get<std::string>()) << "line " << i << ": '" << text << "'";
  }
}

// Lines whose ids differ between two goldens over the same texts.
int CountDifferentLines(const json& a, const json& b) {
  EXPECT_EQ(a.at("texts"), b.at("texts"));
  int n = 0;
  for (size_t i = 0; i < a.at("ids").size(); ++i) n += a.at("ids")[i] != b.at("ids")[i];
  return n;
}

TEST(HfTokenizerJsonTest, Gpt2MatchesTokenizers) {
  const std::string path = test::SharedData("peft-lora-gpt2/tokenizer.json");
  const Tokenizer tok = LoadJson(path);
  EXPECT_EQ(tok.vocab().model, VocabModel::kBpe);
  EXPECT_EQ(tok.vocab().pre, PreTokenizer::kGpt2);
  EXPECT_EQ(tok.vocab_size(), 50257);  // GPT-2's vocabulary, <|endoftext|> last
  EXPECT_EQ(tok.vocab().merges.size(), 50000u);
  EXPECT_EQ(tok.vocab().types[50256], TokenType::kControl);
  EXPECT_FALSE(tok.vocab().add_bos);  // a ByteLevel post-processor adds nothing
  const json golden = ReadGolden("ids_gpt2.json");
  EXPECT_GE(golden.at("texts").size(), 100u);
  ExpectMatchesGolden(tok, golden);
}

TEST(HfTokenizerJsonTest, SentencePieceLegacyLayoutMatchesTokenizers) {
  // Llama 2 / TinyLlama layout: Prepend + Replace normalizer, no pre-tokenizer.
  const Tokenizer tok = LoadJson(test::Golden("tokenizer/tok512_legacy.json"));
  EXPECT_EQ(tok.vocab().model, VocabModel::kSpm);
  EXPECT_EQ(tok.vocab().space_prefix, SpacePrefix::kLlamaCpp);
  EXPECT_EQ(tok.vocab().bos_id, 1);
  EXPECT_TRUE(tok.vocab().add_bos);  // TemplateProcessing "<s> $A"
  EXPECT_EQ(tok.vocab().types[0], TokenType::kUnknown);
  EXPECT_EQ(tok.vocab().types[3], TokenType::kByte);  // <0x00>
  ExpectMatchesGolden(tok, ReadGolden("ids_tok512_legacy.json"));
}

TEST(HfTokenizerJsonTest, SentencePieceMetaspaceLayoutMatchesTokenizers) {
  const Tokenizer tok = LoadJson(test::Golden("tokenizer/tok512_metaspace.json"));
  EXPECT_EQ(tok.vocab().model, VocabModel::kSpm);
  EXPECT_EQ(tok.vocab().space_prefix, SpacePrefix::kMetaspaceFirst);
  const json golden = ReadGolden("ids_tok512_metaspace.json");
  ExpectMatchesGolden(tok, golden);
  // Not vacuous: on the space-prefix edge cases "first" really differs from the
  // legacy layout's llama.cpp-style prefix (22 of the 133 lines with tokenizers 0.23.3).
  constexpr int kMinDifferentLines = 10;
  EXPECT_GE(CountDifferentLines(golden, ReadGolden("ids_tok512_legacy.json")), kMinDifferentLines);
}

// tok512_metaspace.json with the pre_tokenizer and decoder recorded in `golden`
// ("always", and "never" without the Strip decoder), on the space-prefix edge cases.
void ExpectMetaspaceVariantMatches(const std::string& golden_name, SpacePrefix expected) {
  const json golden = ReadGolden(golden_name);
  json file = json::parse(test::ReadFileText(test::Golden("tokenizer/tok512_metaspace.json")));
  file["pre_tokenizer"] = golden.at("pre_tokenizer");
  file["decoder"] = golden.at("decoder");
  const Tokenizer tok(VocabFromTokenizerJson(file.dump(), golden_name), golden_name);
  EXPECT_EQ(tok.vocab().space_prefix, expected);
  ExpectMatchesGolden(tok, golden);
}

TEST(HfTokenizerJsonTest, MetaspaceAlwaysMatchesTokenizers) {
  ExpectMetaspaceVariantMatches("ids_tok512_metaspace_always.json", SpacePrefix::kMetaspaceAlways);
}

TEST(HfTokenizerJsonTest, MetaspaceNeverMatchesTokenizers) {
  ExpectMetaspaceVariantMatches("ids_tok512_metaspace_never.json", SpacePrefix::kNone);
}

TEST(HfTokenizerJsonTest, MetaspaceLegacyAddPrefixSpace) {
  // Pre-0.14 files carry add_prefix_space instead of prepend_scheme; tokenizers 0.23.3
  // reads true (or neither key) as "always" and a scheme beside add_prefix_space: true
  // as the scheme. A lone false, refused by 0.23.3, meant "never" where it was written.
  json file = json::parse(test::ReadFileText(test::Golden("tokenizer/tok512_metaspace.json")));
  const auto prefix_with = [&](const json& keys) {
    file["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"split", false}};
    file["pre_tokenizer"].update(keys);
    return VocabFromTokenizerJson(file.dump(), "legacy_metaspace").space_prefix;
  };
  EXPECT_EQ(prefix_with({{"add_prefix_space", true}}), SpacePrefix::kMetaspaceAlways);
  EXPECT_EQ(prefix_with(json::object()), SpacePrefix::kMetaspaceAlways);
  EXPECT_EQ(prefix_with({{"add_prefix_space", false}}), SpacePrefix::kNone);
  EXPECT_EQ(prefix_with({{"add_prefix_space", true}, {"prepend_scheme", "never"}}), SpacePrefix::kNone);
  EXPECT_EQ(prefix_with({{"add_prefix_space", true}, {"prepend_scheme", "first"}}), SpacePrefix::kMetaspaceFirst);
}

TEST(HfTokenizerJsonTest, Llama3StyleMatchesTokenizers) {
  const Tokenizer tok = LoadJson(test::Golden("tokenizer/llama3_style.json"));
  EXPECT_EQ(tok.vocab().pre, PreTokenizer::kLlama3);
  EXPECT_EQ(tok.vocab().bos_id, 700);  // <|begin_of_text|>, from TemplateProcessing
  EXPECT_TRUE(tok.vocab().add_bos);
  EXPECT_EQ(tok.vocab().types[702], TokenType::kUserDefined);  // <mark>, special: false
  ExpectMatchesGolden(tok, ReadGolden("ids_llama3_style.json"));
}

TEST(HfTokenizerJsonTest, Smollm2StyleMatchesTokenizers) {
  const Tokenizer tok = LoadJson(test::Golden("tokenizer/smollm2_style.json"));
  EXPECT_EQ(tok.vocab().pre, PreTokenizer::kSmollm);
  EXPECT_FALSE(tok.vocab().add_bos);
  ExpectMatchesGolden(tok, ReadGolden("ids_smollm2_style.json"));
}

TEST(HfTokenizerJsonTest, ConfigSetsSpecialTokensAndFlags) {
  Vocab v = VocabFromTokenizerJson(test::ReadFileText(test::SharedData("peft-lora-gpt2/tokenizer.json")), "gpt2");
  EXPECT_EQ(v.bos_id, kNoToken);
  // The shared tokenizer_config.json names <|endoftext|> (id 50256) for bos/eos/unk/pad.
  ApplyTokenizerConfig(v, test::ReadFileText(test::SharedData("peft-lora-gpt2/tokenizer_config.json")), "cfg");
  EXPECT_EQ(v.bos_id, 50256);
  EXPECT_EQ(v.eos_id, 50256);
  EXPECT_EQ(v.pad_id, 50256);
  EXPECT_FALSE(v.add_bos);
  ApplyTokenizerConfig(v, R"({"add_eos_token": true, "eos_token": {"__type": "AddedToken", "content": "!"}})", "c2");
  EXPECT_TRUE(v.add_eos);
  EXPECT_EQ(v.eos_id, 0);  // "!" is GPT-2's first piece
}

}  // namespace
}  // namespace nibble::tokenizer
