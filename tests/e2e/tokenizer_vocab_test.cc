// Tokenizers on real vocabularies: every case of llama.cpp's tokenizer test files
// (models/ggml-vocab-*.gguf.inp/.out, as tests/test-tokenizer-0.cpp runs them),
// tok512.bin against the GGUF copy of the same vocabulary, and the GPT-2
// vocab.json/merges.txt against the GGUF gpt-2 vocabulary. Exact ids: no tolerance.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/model_loader.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::test {
namespace {

using tokenizer::Tokenizer;
using tokenizer::TokenType;
using tokenizer::Vocab;
using api::VocabFromGguf;  // the loader nibble generate uses

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// test-tokenizer-0.cpp's read_tests: inputs are separated by "\n__ggml_vocab_test__\n"
// and kept byte for byte (no stripping); each .out line is stripped and split on spaces.
std::vector<Case> ReadCases(const std::string& gguf_path) {
  const std::string inp = ReadFileText(gguf_path + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(inp.substr(pos));
      break;
    }
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::istringstream out(ReadFileText(gguf_path + ".out"));
  std::vector<Case> cases;
  std::string line;
  for (size_t i = 0; std::getline(out, line); ++i) {
    if (i >= inputs.size()) throw std::runtime_error("test: more .out lines than .inp cases in " + gguf_path);
    Case c{inputs[i], {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  if (cases.size() != inputs.size()) throw std::runtime_error("test: .inp/.out case counts differ for " + gguf_path);
  return cases;
}

void CheckLlamaCppCases(const std::string& name, size_t expected_cases) {
  const std::string path = SharedData("tokenizer-llamacpp-vocab/" + name);
  const io::GgufFile g = io::GgufFile::Open(path);
  const Tokenizer tok(VocabFromGguf(g), path);
  const std::vector<Case> cases = ReadCases(path);
  ASSERT_EQ(cases.size(), expected_cases);
  for (const Case& c : cases) {
    // test-tokenizer-0 calls common_tokenize(ctx, text, add_special=false, parse_special=false).
    EXPECT_EQ(tok.Encode(c.text, false, false), c.ids) << name << ": '" << c.text << "'";
    // Decoding gives the text back for every case of both files: all inputs are valid
    // UTF-8, and Decode drops only the space the SPM prefix added.
    EXPECT_EQ(tok.Decode(c.ids), c.text) << name << ": '" << c.text << "'";
  }
}

TEST(TokenizerVocabTest, LlamaSpmMatchesLlamaCppCases) { CheckLlamaCppCases("ggml-vocab-llama-spm.gguf", 46); }

TEST(TokenizerVocabTest, Gpt2MatchesLlamaCppCases) { CheckLlamaCppCases("ggml-vocab-gpt-2.gguf", 46); }

TEST(TokenizerVocabTest, LlamaSpmAddsBosAndParsesSpecial) {
  const std::string path = SharedData("tokenizer-llamacpp-vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer tok(VocabFromGguf(io::GgufFile::Open(path)), path);
  const std::vector<int32_t> plain = tok.Encode("Hello world", false, false);
  std::vector<int32_t> with_bos = {1};
  with_bos.insert(with_bos.end(), plain.begin(), plain.end());
  EXPECT_EQ(tok.Encode("Hello world", true, false), with_bos);
  // "<s>" is a control piece: text unless parse_special, then BOS followed by a fragment
  // that gets the space prefix again (llama.cpp's is_prev_special rule).
  std::vector<int32_t> parsed = {1};
  parsed.insert(parsed.end(), plain.begin(), plain.end());
  EXPECT_EQ(tok.Encode("<s>Hello world", false, true), parsed);
  EXPECT_NE(tok.Encode("<s>Hello world", false, false), parsed);
  EXPECT_EQ(tok.Decode(parsed), "Hello world");
  EXPECT_EQ(tok.Decode(parsed, /*render_special=*/true), "<s> Hello world");
}

// tok512.bin (llama2.c, ' ' marker) and stories260K.gguf (U+2581 marker) hold the same
// 512 pieces and scores: both must give the same ids for TinyStories text.
TEST(TokenizerVocabTest, Llama2cTokenizerMatchesGgufCopy) {
  const io::Llama2cTokenizer bin = io::Llama2cTokenizer::Open(SharedData("llama2c-stories260K/tok512.bin"), 512);
  const Tokenizer from_bin(Vocab::FromLlama2c(bin.pieces, bin.scores), "tok512.bin");
  const std::string gguf_path = SharedData("llama2c-stories260K/stories260K.gguf");
  const Tokenizer from_gguf(VocabFromGguf(io::GgufFile::Open(gguf_path)), gguf_path);
  std::istringstream text(ReadFileText(SharedData("text-tinystories/tinystories_val.txt")));
  std::string line;
  int checked = 0;
  for (int i = 0; i < 500 && std::getline(text, line); ++i) {
    ASSERT_EQ(from_bin.Encode(line, true, false), from_gguf.Encode(line, true, false)) << line;
    EXPECT_EQ(from_bin.Decode(from_bin.Encode(line, true, false)), line);
    ++checked;
  }
  EXPECT_EQ(checked, 500);
}

// OpenAI's vocab.json + merges.txt build the same tokenizer as the GGUF gpt-2 vocabulary.
TEST(TokenizerVocabTest, Gpt2VocabJsonMatchesGguf) {
  const std::string gguf_path = SharedData("tokenizer-llamacpp-vocab/ggml-vocab-gpt-2.gguf");
  const Tokenizer from_gguf(VocabFromGguf(io::GgufFile::Open(gguf_path)), gguf_path);

  const nlohmann::json encoder = nlohmann::json::parse(ReadFileText(SharedData("tokenizer-gpt2/vocab.json")));
  Vocab v;
  v.model = tokenizer::VocabModel::kBpe;
  v.pre = tokenizer::PreTokenizer::kGpt2;
  v.pieces.resize(encoder.size());
  for (const auto& [piece, id] : encoder.items()) v.pieces.at(id.get<size_t>()) = piece;
  v.types.assign(v.pieces.size(), TokenType::kNormal);
  v.types.back() = TokenType::kControl;  // 50256 <|endoftext|>
  std::istringstream merges(ReadFileText(SharedData("tokenizer-gpt2/merges.txt")));
  for (std::string line; std::getline(merges, line);) {
    if (!line.empty() && line.rfind("#version", 0) != 0) v.merges.push_back(line);
  }
  ASSERT_EQ(v.merges.size(), 50000u);
  v.bos_id = v.eos_id = 50256;
  const Tokenizer from_json(std::move(v), "vocab.json");

  std::istringstream text(ReadFileText(SharedData("text-tinystories/tinystories_val.txt")));
  std::string line;
  for (int i = 0; i < 200 && std::getline(text, line); ++i) {
    const std::vector<int32_t> ids = from_gguf.Encode(line, false, false);
    ASSERT_EQ(from_json.Encode(line, false, false), ids) << line;
    EXPECT_EQ(from_gguf.Decode(ids), line);
  }
}

}  // namespace
}  // namespace nibble::test
