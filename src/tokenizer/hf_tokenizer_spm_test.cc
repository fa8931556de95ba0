// tokenizer.model read by VocabFromSentencePieceModel against libsentencepiece running
// the same file (Debian 0.1.97, the oracle): piece table, special ids and encoded ids
// on TinyStories and Unicode lines; and the tokenizer.json converted from it by
// transformers (tests/golden/tokenizer/tok512_legacy.json) holds the same pieces.
// Exact ids: no tolerance. tok512.model has remove_extra_whitespaces on, which nibble
// does not apply (docs/FORMATS.md), so the texts given to nibble are normalized the
// same way first, as spm_oracle_test.cc does.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <sstream>
#include <string>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::tokenizer {
namespace {

// SentencePiece's remove_extra_whitespaces on U+0020: strip both ends, collapse runs.
std::string CollapseSpaces(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

class SentencePieceModelTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(sp_.Load(path_).ok()); }

  void ExpectSameIds(const std::string& text) {
    std::vector<int> expected;
    ASSERT_TRUE(sp_.Encode(text, &expected).ok());
    const std::vector<int32_t> ids = tok_.Encode(CollapseSpaces(text), false, false);
    EXPECT_EQ(std::vector<int>(ids.begin(), ids.end()), expected) << "text: '" << text << "'";
    std::string decoded;
    ASSERT_TRUE(sp_.Decode(expected, &decoded).ok());
    EXPECT_EQ(tok_.Decode(ids), decoded) << "text: '" << text << "'";
  }

  const std::string path_ = test::SharedData("llama2c-stories260K/tok512.model");
  sentencepiece::SentencePieceProcessor sp_;
  Tokenizer tok_{VocabFromSentencePieceModel(path_), path_};
};

TEST_F(SentencePieceModelTest, VocabularyMatchesLibsentencepiece) {
  const Vocab& v = tok_.vocab();
  ASSERT_EQ(v.size(), sp_.GetPieceSize());
  EXPECT_EQ(v.model, VocabModel::kSpm);
  EXPECT_EQ(v.bos_id, sp_.bos_id());
  EXPECT_EQ(v.eos_id, sp_.eos_id());
  EXPECT_EQ(v.unk_id, sp_.unk_id());
  EXPECT_TRUE(v.add_bos);
  EXPECT_EQ(v.space_prefix, SpacePrefix::kLlamaCpp);  // normalizer_spec.add_dummy_prefix
  for (int id = 0; id < v.size(); ++id) {
    EXPECT_EQ(v.pieces[id], sp_.IdToPiece(id));
    EXPECT_EQ(v.scores[id], sp_.GetScore(id));
    EXPECT_EQ(v.types[id] == TokenType::kByte, sp_.IsByte(id)) << id;
    EXPECT_EQ(v.types[id] == TokenType::kControl, sp_.IsControl(id)) << id;
  }
}

TEST_F(SentencePieceModelTest, TinyStoriesAndUnicodeIdsMatchLibsentencepiece) {
  constexpr int kLines = 200;
  std::istringstream text(test::ReadFileText(test::SharedData("text-tinystories/tinystories_val.txt")));
  std::string line;
  int n = 0;
  for (; n < kLines && std::getline(text, line); ++n) ExpectSameIds(line);
  EXPECT_EQ(n, kLines);
  for (const char* c : {"caf\xC3\xA9 na\xC3\xAFve", "\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\xA6\x99", "12345 !!!",
                        "tab\tand\nnewline", "  spaced   out  "}) {
    ExpectSameIds(c);
  }
}

TEST_F(SentencePieceModelTest, ConvertedTokenizerJsonHasTheSamePieces) {
  const std::string json_path = test::Golden("tokenizer/tok512_legacy.json");
  const Vocab converted = VocabFromTokenizerJson(test::ReadFileText(json_path), json_path);
  EXPECT_EQ(converted.pieces, tok_.vocab().pieces);
  EXPECT_EQ(converted.types, tok_.vocab().types);
}

TEST(SentencePieceModelErrorsTest, UnigramAndUnreadableFilesAreRejected) {
  try {
    VocabFromSentencePieceModel(test::Golden("tokenizer/tok512_unigram.model"));
    ADD_FAILURE() << "unigram model accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unigram"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("trainer_spec.model_type"), std::string::npos) << e.what();
  }
  EXPECT_THROW(VocabFromSentencePieceModel(test::Golden("tokenizer/no_such.model")), IoError);
  // A JSON file is not a protobuf SentencePiece model.
  EXPECT_THROW(VocabFromSentencePieceModel(test::Golden("tokenizer/VERSIONS.txt")), FormatError);
}

}  // namespace
}  // namespace nibble::tokenizer
