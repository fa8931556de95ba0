// Vocab name tables, the llama2.c constructor and validation.
#include "tokenizer/vocab.h"

#include <fmt/core.h>

#include <array>
#include <iterator>
#include <utility>

#include "nibble/error.h"

namespace nibble::tokenizer {
namespace {

constexpr std::array<std::string_view, kNumVocabModels> kModelNames = {"llama", "gpt2"};
static_assert(std::size(kModelNames) == kNumVocabModels);

// Canonical name per PreTokenizer, indexed by the enum.
constexpr std::array<std::string_view, kNumPreTokenizers> kPreNames = {"default", "gpt-2", "llama3", "smollm",
                                                                       "qwen2"};
static_assert(std::size(kPreNames) == kNumPreTokenizers);

// GGUF `tokenizer.ggml.pre` spellings that share a regex list (llama.cpp,
// src/llama-vocab.cpp, llama_vocab::impl::load and llm_tokenizer_bpe).
struct PreAlias {
  std::string_view name;
  PreTokenizer pre;
};
constexpr PreAlias kPreAliases[] = {
    {"default", PreTokenizer::kDefault},  {"gpt-2", PreTokenizer::kGpt2},       {"phi-2", PreTokenizer::kGpt2},
    {"mpt", PreTokenizer::kGpt2},         {"olmo", PreTokenizer::kGpt2},        {"llama3", PreTokenizer::kLlama3},
    {"llama-v3", PreTokenizer::kLlama3},  {"llama-bpe", PreTokenizer::kLlama3}, {"dbrx", PreTokenizer::kLlama3},
    {"smaug-bpe", PreTokenizer::kLlama3}, {"smollm", PreTokenizer::kSmollm},    {"starcoder", PreTokenizer::kSmollm},
    {"refact", PreTokenizer::kSmollm},    {"command-r", PreTokenizer::kSmollm}, {"qwen2", PreTokenizer::kQwen2},
    {"stablelm2", PreTokenizer::kQwen2},  {"deepseek-r1-qwen", PreTokenizer::kQwen2},
};

}  // namespace

VocabModel ParseVocabModel(std::string_view name) {
  for (int32_t i = 0; i < kNumVocabModels; ++i) {
    if (kModelNames[i] == name) return static_cast<VocabModel>(i);
  }
  throw ConfigError(fmt::format("tokenizer.ggml.model: expected \"llama\" or \"gpt2\", got \"{}\"", name));
}

PreTokenizer ParsePreTokenizer(std::string_view name) {
  for (const PreAlias& a : kPreAliases) {
    if (a.name == name) return a.pre;
  }
  throw ConfigError(fmt::format(
      "tokenizer.ggml.pre: unsupported pre-tokenizer \"{}\" (supported: default, gpt-2, phi-2, mpt, olmo, llama3, "
      "llama-v3, llama-bpe, dbrx, smaug-bpe, smollm, starcoder, refact, command-r, qwen2, stablelm2, "
      "deepseek-r1-qwen)",
      name));
}

std::string_view VocabModelName(VocabModel m) { return kModelNames[static_cast<int32_t>(m)]; }
std::string_view PreTokenizerName(PreTokenizer p) { return kPreNames[static_cast<int32_t>(p)]; }

bool ParseBytePiece(std::string_view piece, uint8_t* byte) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return false;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    value = value * 16 + d;
  }
  *byte = static_cast<uint8_t>(value);
  return true;
}

Vocab Vocab::FromLlama2c(std::vector<std::string> pieces, std::vector<float> scores) {
  // llama2.c's run.c hard-codes BOS = 1, EOS = 2 and bytes at 3 + b; <unk> is id 0.
  constexpr int32_t kLlama2cUnk = 0, kLlama2cBos = 1, kLlama2cEos = 2;
  if (pieces.size() < 3 || pieces.size() != scores.size()) {
    throw FormatError(fmt::format("llama2.c tokenizer: expected >= 3 pieces with one score each, got {} pieces and {} "
                                  "scores",
                                  pieces.size(), scores.size()));
  }
  Vocab v;
  v.model = VocabModel::kSpm;
  v.types.resize(pieces.size(), TokenType::kNormal);
  v.types[kLlama2cUnk] = TokenType::kUnknown;
  v.types[kLlama2cBos] = TokenType::kControl;
  v.types[kLlama2cEos] = TokenType::kControl;
  for (size_t i = 3; i < pieces.size(); ++i) {
    uint8_t b;
    if (ParseBytePiece(pieces[i], &b)) v.types[i] = TokenType::kByte;
  }
  v.pieces = std::move(pieces);
  v.scores = std::move(scores);
  v.unk_id = kLlama2cUnk;
  v.bos_id = kLlama2cBos;
  v.eos_id = kLlama2cEos;
  v.add_bos = true;
  v.add_eos = false;
  v.space_prefix = SpacePrefix::kLlamaCpp;
  v.space_marker = " ";
  return v;
}

void Vocab::Validate(std::string_view source) const {
  const size_t n = pieces.size();
  if (n == 0) throw FormatError(fmt::format("{}: tokenizer vocabulary is empty", source));
  if (n > static_cast<size_t>(INT32_MAX)) {
    throw FormatError(fmt::format("{}: tokenizer vocabulary has {} pieces, more than int32 ids can address", source, n));
  }
  if (types.size() != n) {
    throw FormatError(fmt::format("{}: tokenizer token types: expected {} entries (one per piece), got {}", source, n,
                                  types.size()));
  }
  if (model == VocabModel::kSpm ? scores.size() != n : !(scores.empty() || scores.size() == n)) {
    throw FormatError(fmt::format("{}: tokenizer scores: expected {} entries (one per piece), got {}", source, n,
                                  scores.size()));
  }
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = static_cast<int32_t>(types[i]);
    if (t < 0 || t >= kNumTokenTypes) {
      throw FormatError(fmt::format("{}: token {} ('{}'): token type {} is not in [0, {})", source, i, pieces[i], t,
                                    kNumTokenTypes));
    }
  }
  const std::pair<const char*, int32_t> specials[] = {{"bos", bos_id}, {"eos", eos_id}, {"unk", unk_id}, {"pad", pad_id}};
  for (const auto& [name, id] : specials) {
    if (id != kNoToken && (id < 0 || static_cast<size_t>(id) >= n)) {
      throw FormatError(fmt::format("{}: {} token id {} is outside the vocabulary [0, {})", source, name, id, n));
    }
  }
  if ((add_bos && bos_id == kNoToken) || (add_eos && eos_id == kNoToken)) {
    throw FormatError(fmt::format("{}: add_{}_token is true but no {} token id is set", source,
                                  add_bos && bos_id == kNoToken ? "bos" : "eos",
                                  add_bos && bos_id == kNoToken ? "bos" : "eos"));
  }
  if (model == VocabModel::kSpm && space_marker.empty()) {
    throw FormatError(fmt::format("{}: SentencePiece vocabulary needs a non-empty space marker", source));
  }
  if (model == VocabModel::kBpe) {
    for (size_t i = 0; i < merges.size(); ++i) {
      // The separator is the first space after position 0, as llama.cpp splits them.
      const size_t sep = merges[i].find(' ', 1);
      if (sep == std::string::npos || sep + 1 >= merges[i].size()) {
        throw FormatError(fmt::format("{}: BPE merge {} ('{}'): expected \"left right\"", source, i, merges[i]));
      }
    }
  }
}

}  // namespace nibble::tokenizer
