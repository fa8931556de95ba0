// Encode/Decode for SPM and byte-level BPE vocabularies, after llama.cpp's
// llama_vocab::impl::tokenize (special-token partition first, then per-fragment
// tokenization) and token_to_piece; SPM space prefix also as tokenizers' Metaspace.
#include "tokenizer/tokenizer.h"

#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "nibble/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/merge.h"
#include "tokenizer/pre_tokenizer.h"

namespace nibble::tokenizer {
namespace {

bool IsSpecialType(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from == to) return;
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  for (size_t hit; (hit = s->find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(*s, pos, hit - pos);
    out.append(to);
  }
  out.append(*s, pos);
  s->swap(out);
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab, std::string_view source) : vocab_(std::move(vocab)) {
  vocab_.Validate(source);
  const int32_t n = vocab_.size();
  piece_to_id_.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) piece_to_id_[vocab_.pieces[id]] = id;

  for (int b = 0; b < 256; ++b) {
    int32_t id = kNoToken;
    if (vocab_.model == VocabModel::kSpm) {
      // llama.cpp's byte_to_token: "<0xNN>" with upper-case hex, else the one-byte piece.
      id = Find(fmt::format("<0x{:02X}>", b));
      if (id == kNoToken) id = Find(std::string(1, static_cast<char>(b)));
    } else {
      std::string ch;
      ByteLevelEncode(std::string_view(reinterpret_cast<const char*>(&b), 1), &ch);
      id = Find(ch);
    }
    byte_to_id_[b] = id;
  }

  for (int32_t id = 0; id < n; ++id) {
    if (IsSpecialType(vocab_.types[id]) && !vocab_.pieces[id].empty()) special_ids_.push_back(id);
  }
  // Longest first so "<|im_start|>" wins over a prefix of it; ids break ties so the
  // order does not depend on the sort implementation.
  std::stable_sort(special_ids_.begin(), special_ids_.end(), [&](int32_t a, int32_t b) {
    return vocab_.pieces[a].size() > vocab_.pieces[b].size();
  });

  if (vocab_.model == VocabModel::kBpe) {
    merge_ranks_.reserve(vocab_.merges.size());
    for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
      const std::string& m = vocab_.merges[rank];
      const size_t sep = m.find(' ', 1);  // Validate checked it exists
      std::string merged = m.substr(0, sep) + m.substr(sep + 1);
      merge_ranks_[merged].emplace_back(static_cast<uint32_t>(sep), static_cast<int32_t>(rank));
    }
    pre_ = std::make_unique<PreTokenizerRegexes>(vocab_.pre);
    ignore_merges_ = vocab_.pre == PreTokenizer::kLlama3;
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

int32_t Tokenizer::Find(std::string_view piece) const {
  const auto it = piece_to_id_.find(piece);
  return it == piece_to_id_.end() ? kNoToken : it->second;
}

// Splits `text` at every occurrence of a special piece, longest pieces first
// (llama.cpp's tokenizer_st_partition).
std::vector<Tokenizer::Fragment> Tokenizer::Partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags{{text, kNoToken}};
  std::vector<Fragment> next;
  for (int32_t id : special_ids_) {
    if (!parse_special && vocab_.types[id] != TokenType::kUserDefined) continue;
    const std::string& piece = vocab_.pieces[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t pos = 0;
      for (size_t hit; (hit = f.text.find(piece, pos)) != std::string_view::npos; pos = hit + piece.size()) {
        if (hit > pos) next.push_back({f.text.substr(pos, hit - pos), kNoToken});
        next.push_back({{}, id});
      }
      if (pos < f.text.size()) next.push_back({f.text.substr(pos), kNoToken});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  if (text.size() >= std::numeric_limits<uint32_t>::max()) {
    throw ShapeError(fmt::format("tokenizer: text of {} bytes is too long (at most 4 GiB - 1)", text.size()));
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos_id);
  const std::vector<Fragment> frags = text.empty() ? std::vector<Fragment>{} : Partition(text, parse_special);

  if (vocab_.model == VocabModel::kSpm) {
    bool prev_special = true;  // llama.cpp: the text's start counts as after a special token
    std::string buf;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      buf.clear();
      if (WantsSpacePrefix(f.text, static_cast<size_t>(f.text.data() - text.data()), prev_special)) buf.push_back(' ');
      buf.append(f.text);
      ReplaceAll(&buf, " ", vocab_.space_marker);
      EncodeSpm(buf, &out);
      prev_special = false;
    }
  } else {
    std::string repaired, scratch;
    std::vector<std::string_view> words;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        continue;
      }
      repaired = RepairUtf8(f.text);
      words.clear();
      pre_->Split(repaired, &words);
      for (std::string_view w : words) EncodeBpeWord(w, &scratch, &out);
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos_id);
  return out;
}

// Metaspace tests the text after its spaces became the marker (tokenizers'
// pre_tokenizers/metaspace.rs), so a leading ' ' counts as a leading marker.
bool Tokenizer::WantsSpacePrefix(std::string_view fragment, size_t offset, bool prev_special) const {
  switch (vocab_.space_prefix) {
    case SpacePrefix::kNone:
      return false;
    case SpacePrefix::kLlamaCpp:
      return prev_special;
    case SpacePrefix::kMetaspaceFirst:
      if (offset != 0) return false;
      [[fallthrough]];
    case SpacePrefix::kMetaspaceAlways:
      return !fragment.starts_with(' ') && !fragment.starts_with(vocab_.space_marker);
  }
  return false;
}

void Tokenizer::AppendByteTokens(std::string_view bytes, std::vector<int32_t>* out) const {
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    int32_t id = byte_to_id_[b];
    if (id == kNoToken) id = vocab_.unk_id;
    if (id == kNoToken) {
      throw FormatError(fmt::format(
          "tokenizer: byte 0x{:02X} has no token (no byte-fallback piece and no unknown token in the vocabulary)", b));
    }
    out->push_back(id);
  }
}

// llm_tokenizer_spm: merge characters by the score of the merged piece; a symbol left
// that is not a piece falls back to its bytes.
void Tokenizer::EncodeSpm(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<std::string_view> segments;
  const auto priority = [&](std::string_view merged, size_t) -> std::optional<float> {
    const int32_t id = Find(merged);
    if (id == kNoToken) return std::nullopt;
    return vocab_.scores[id];
  };
  MergeGreedy(text, priority, &segments);
  for (std::string_view s : segments) {
    const int32_t id = Find(s);
    if (id != kNoToken) {
      out->push_back(id);
    } else {
      AppendByteTokens(s, out);
    }
  }
}

// llm_tokenizer_bpe_session: spell the word in the byte alphabet, merge by rank (lower
// first); a symbol left that is not a piece falls back to its byte characters.
void Tokenizer::EncodeBpeWord(std::string_view word, std::string* scratch, std::vector<int32_t>* out) const {
  scratch->clear();
  ByteLevelEncode(word, scratch);
  const std::string_view text = *scratch;
  if (ignore_merges_) {
    const int32_t id = Find(text);
    if (id != kNoToken) {
      out->push_back(id);
      return;
    }
  }
  std::vector<std::string_view> segments;
  const auto priority = [&](std::string_view merged, size_t left_len) -> std::optional<float> {
    const auto it = merge_ranks_.find(merged);
    if (it == merge_ranks_.end()) return std::nullopt;
    for (const auto& [len, rank] : it->second) {
      // Ranks are < 2^24 in any real vocabulary, so the float is exact.
      if (len == left_len) return -static_cast<float>(rank);
    }
    return std::nullopt;
  };
  MergeGreedy(text, priority, &segments);
  for (std::string_view s : segments) {
    const int32_t id = Find(s);
    if (id != kNoToken) {
      out->push_back(id);
      continue;
    }
    std::string bytes;
    ByteLevelDecode(s, &bytes);
    AppendByteTokens(bytes, out);
  }
}

std::string Tokenizer::TokenPiece(int32_t id, bool render_special) const {
  if (id < 0 || id >= vocab_size()) {
    throw ConfigError(fmt::format("tokenizer: token id {} is outside the vocabulary [0, {})", id, vocab_size()));
  }
  const std::string& piece = vocab_.pieces[id];
  switch (vocab_.types[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? piece : std::string();
    case TokenType::kUserDefined:
      return piece;
    case TokenType::kByte: {
      uint8_t b;
      if (ParseBytePiece(piece, &b)) return std::string(1, static_cast<char>(b));
      return piece;
    }
    case TokenType::kNormal: {
      std::string out;
      if (vocab_.model == VocabModel::kSpm) {
        out = piece;
        ReplaceAll(&out, vocab_.space_marker, " ");
      } else {
        ByteLevelDecode(piece, &out);
      }
      return out;
    }
    case TokenType::kUnused:
    case TokenType::kUndefined:
      return std::string();
  }
  return std::string();
}

std::string Tokenizer::TokenPieceAfter(int32_t prev_id, int32_t id) const {
  std::string piece = TokenPiece(id);
  const bool at_start = prev_id == kNoToken || (prev_id == vocab_.bos_id && prev_id != kNoToken);
  if (vocab_.model == VocabModel::kSpm && vocab_.space_prefix != SpacePrefix::kNone && at_start && !piece.empty() &&
      piece[0] == ' ') {
    piece.erase(0, 1);
  }
  return piece;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  // tokenizers' decoders agree: Strip(" ", 1, 0) after Fuse, which its converters add
  // with a space prefix, and a Metaspace decoder whose prepend_scheme is not "never"
  // drop one space at the start of the first token left after skipping specials.
  bool strip = vocab_.model == VocabModel::kSpm && vocab_.space_prefix != SpacePrefix::kNone;
  for (int32_t id : ids) {
    std::string piece = TokenPiece(id, render_special);
    if (piece.empty()) continue;
    if (strip && piece[0] == ' ') piece.erase(0, 1);
    strip = false;
    out += piece;
  }
  return out;
}

}  // namespace nibble::tokenizer
