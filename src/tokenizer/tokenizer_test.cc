// Tokenizer on small hand-made vocabularies. Reference: the merge rules as llama.cpp
// defines them (SPM: highest piece score first, leftmost on ties, byte fallback; BPE:
// lowest merge rank first), worked out by hand for each case; error tiers of C3.
// Exact ids: no tolerance.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/byte_level.h"

namespace nibble::tokenizer {
namespace {

using Ids = std::vector<int32_t>;
const std::string kM = "\xE2\x96\x81";  // U+2581, the SPM word marker

// ids: 0 <unk>, 1 <s>, 2 </s>, 3 <0xC3>, 4 <0xA9>, then normal pieces.
Vocab SpmVocab(std::vector<std::pair<std::string, float>> normal) {
  Vocab v;
  v.model = VocabModel::kSpm;
  v.pieces = {"<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>"};
  v.scores = {0, 0, 0, 0, 0};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl, TokenType::kByte, TokenType::kByte};
  for (auto& [p, s] : normal) {
    v.pieces.push_back(p);
    v.scores.push_back(s);
    v.types.push_back(TokenType::kNormal);
  }
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.space_prefix = SpacePrefix::kLlamaCpp;
  return v;
}

TEST(SpmTest, MergesHighestScoreFirst) {
  // "▁ab": pairs "▁a" and "ab"; whichever scores higher merges first, and "▁ab" is
  // not a piece, so the result shows the order.
  const Tokenizer ab_first(SpmVocab({{kM, -5}, {"a", -5}, {"b", -5}, {kM + "a", -2}, {"ab", -1}}));
  EXPECT_EQ(ab_first.Encode("ab", false, false), (Ids{5, 9}));
  const Tokenizer ma_first(SpmVocab({{kM, -5}, {"a", -5}, {"b", -5}, {kM + "a", -1}, {"ab", -2}}));
  EXPECT_EQ(ma_first.Encode("ab", false, false), (Ids{8, 7}));
}

TEST(SpmTest, TiesMergeLeftmostFirst) {
  const Tokenizer tok(SpmVocab({{kM, -5}, {"a", -5}, {"aa", -1}}));
  // "▁aaa": "aa" can form at (1,2) or (2,3); the left one wins: ▁ aa a.
  EXPECT_EQ(tok.Encode("aaa", false, false), (Ids{5, 7, 6}));
}

TEST(SpmTest, ByteFallbackAndDecode) {
  const Tokenizer tok(SpmVocab({{kM, -5}, {"a", -5}}));
  // "é" (C3 A9) is not a piece: its bytes are.
  EXPECT_EQ(tok.Encode("a\xC3\xA9", true, false), (Ids{1, 5, 6, 3, 4}));
  EXPECT_EQ(tok.Decode(Ids{1, 5, 6, 3, 4}), "a\xC3\xA9");
  // An invalid byte is its own symbol; a byte with no piece at all becomes <unk>.
  EXPECT_EQ(tok.Encode("\xC3", false, false), (Ids{5, 3}));
  EXPECT_EQ(tok.Encode("\xFF", false, false), (Ids{5, 0}));
}

TEST(SpmTest, SpacePrefixAfterSpecialTokensAndStreaming) {
  const Tokenizer tok(SpmVocab({{kM, -5}, {"a", -5}, {kM + "a", -1}}));
  EXPECT_EQ(tok.Encode("a", false, false), (Ids{7}));
  // A fragment after a special token gets the prefix again (llama.cpp's is_prev_special).
  EXPECT_EQ(tok.Encode("a</s>a", false, true), (Ids{7, 2, 7}));
  EXPECT_NE(tok.Encode("a</s>a", false, false), (Ids{7, 2, 7}));
  EXPECT_EQ(tok.TokenPiece(7), " a");
  EXPECT_EQ(tok.TokenPieceAfter(1, 7), "a");
  EXPECT_EQ(tok.TokenPieceAfter(7, 7), " a");
  EXPECT_EQ(tok.TokenPiece(1), "");
  EXPECT_EQ(tok.TokenPiece(1, true), "<s>");
  EXPECT_EQ(tok.Decode(Ids{1, 7, 7}), "a a");
}

TEST(SpmTest, Llama2cVocabUsesPlainSpaceMarker) {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    pieces.push_back(buf);
    scores.push_back(0);
  }
  for (const char* p : {" ", "h", "i", " h", "hi", " hi"}) {
    pieces.push_back(p);
    scores.push_back(-static_cast<float>(pieces.size()));
  }
  const Tokenizer tok(Vocab::FromLlama2c(pieces, scores));
  EXPECT_EQ(tok.vocab().types[3 + 0x41], TokenType::kByte);
  // " hi" (id 264) is reached through " h" + "i" or " " + "hi": score decides.
  EXPECT_EQ(tok.Encode("hi", true, false), (Ids{1, 264}));
  EXPECT_EQ(tok.Encode("hi!", true, false), (Ids{1, 264, 3 + '!'}));
  EXPECT_EQ(tok.Decode(Ids{1, 264, 3 + '!'}), "hi!");
}

// Byte-level vocabulary: every byte's character, then merged pieces.
Vocab BpeVocab(std::vector<std::string> merges) {
  Vocab v;
  v.model = VocabModel::kBpe;
  v.pre = PreTokenizer::kGpt2;
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    std::string ch;
    ByteLevelEncode(std::string_view(&c, 1), &ch);
    v.pieces.push_back(ch);
  }
  for (const char* p : {"ab", "bc", "\xC4\xA0" "a", "<|endoftext|>", "<tool>"}) v.pieces.push_back(p);
  v.types.assign(v.pieces.size(), TokenType::kNormal);
  v.types[259] = TokenType::kControl;
  v.types[260] = TokenType::kUserDefined;
  v.merges = std::move(merges);
  v.bos_id = v.eos_id = 259;
  return v;
}

TEST(BpeTest, MergesLowestRankFirst) {
  // ids: 'a' 97, 'b' 98, 'c' 99, "ab" 256, "bc" 257, "Ġa" 258.
  EXPECT_EQ(Tokenizer(BpeVocab({"b c", "a b"})).Encode("abc", false, false), (Ids{97, 257}));
  EXPECT_EQ(Tokenizer(BpeVocab({"a b", "b c"})).Encode("abc", false, false), (Ids{256, 99}));
  // The pre-tokenizer keeps words apart: " a" is one word, spelled "Ġa".
  EXPECT_EQ(Tokenizer(BpeVocab({"\xC4\xA0 a"})).Encode("a a", false, false), (Ids{97, 258}));
}

TEST(BpeTest, SpecialAndAddedTokens) {
  const Tokenizer tok(BpeVocab({"a b"}));
  // Control tokens only with parse_special; user-defined ("added") tokens always.
  EXPECT_EQ(tok.Encode("ab<|endoftext|>", false, true), (Ids{256, 259}));
  // As text: "ab" + 13 single-byte tokens ("<|", "endoftext", "|>" have no merges here).
  EXPECT_EQ(tok.Encode("ab<|endoftext|>", false, false).size(), 14u);
  EXPECT_EQ(tok.Encode("<tool>ab", false, false), (Ids{260, 256}));
  EXPECT_EQ(tok.Decode(Ids{256, 259, 260}), "ab<tool>");
  EXPECT_EQ(tok.Decode(Ids{256, 259, 260}, true), "ab<|endoftext|><tool>");
}

TEST(BpeTest, EveryByteRoundTripsThroughEncodeAndDecode) {
  const Tokenizer tok(BpeVocab({"a b", "b c"}));
  std::string all;
  for (int b = 1; b < 256; ++b) all.push_back(static_cast<char>(b));
  // Invalid UTF-8 is replaced by U+FFFD first (as llama.cpp does); valid text is lossless.
  const std::string valid = "plain ASCII, caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\xA6\x99\t\r\n end";
  EXPECT_EQ(tok.Decode(tok.Encode(valid, false, false)), valid);
  EXPECT_EQ(tok.Decode(tok.Encode("a\xFF" "b", false, false)), "a\xEF\xBF\xBD" "b");
}

TEST(VocabTest, InvalidVocabulariesThrowFormatError) {
  Vocab short_types = SpmVocab({{"a", -1}});
  short_types.types.pop_back();
  EXPECT_THROW(Tokenizer{short_types}, FormatError);
  Vocab bad_bos = SpmVocab({{"a", -1}});
  bad_bos.bos_id = 99;
  EXPECT_THROW(Tokenizer{bad_bos}, FormatError);
  Vocab bad_type = SpmVocab({{"a", -1}});
  bad_type.types[5] = static_cast<TokenType>(9);
  EXPECT_THROW(Tokenizer{bad_type}, FormatError);
  EXPECT_THROW(Tokenizer{BpeVocab({"ab"})}, FormatError);  // merge without a space
  EXPECT_THROW(Vocab::FromLlama2c({"<unk>", "<s>"}, {0, 0}), FormatError);
}

TEST(VocabTest, NamesAndRangeErrors) {
  EXPECT_EQ(ParseVocabModel("gpt2"), VocabModel::kBpe);
  EXPECT_EQ(ParseVocabModel("llama"), VocabModel::kSpm);
  EXPECT_THROW(ParseVocabModel("bert"), ConfigError);
  EXPECT_EQ(ParsePreTokenizer("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(ParsePreTokenizer("smollm"), PreTokenizer::kSmollm);
  EXPECT_EQ(ParsePreTokenizer("qwen2"), PreTokenizer::kQwen2);
  EXPECT_EQ(PreTokenizerName(ParsePreTokenizer("gpt-2")), "gpt-2");
  EXPECT_THROW(ParsePreTokenizer("no-such-pre"), ConfigError);
  const Tokenizer tok(SpmVocab({{"a", -1}}));
  EXPECT_THROW(tok.TokenPiece(6), ConfigError);
  EXPECT_THROW(tok.Decode(Ids{-1}), ConfigError);
}

}  // namespace
}  // namespace nibble::tokenizer
