// Text <-> token ids for a Vocab: SentencePiece-style BPE ("llama", merged by piece
// score, byte fallback) and GPT-2 byte-level BPE ("gpt2", regex pre-tokenizer, merged
// by rank), with special and added tokens. Semantics follow llama.cpp's
// llama_vocab::tokenize / token_to_piece (src/llama-vocab.cpp); see tokenizer.cc.
// Layer: tokenizer (level 1), may depend on core, nlohmann-json and PCRE2 only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/vocab.h"

namespace nibble::tokenizer {

class PreTokenizerRegexes;

class Tokenizer {
 public:
  // Validates `vocab` (FormatError naming `source`) and builds the lookup tables.
  explicit Tokenizer(Vocab vocab, std::string_view source = "tokenizer");
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // add_special: prepend BOS / append EOS where the vocab's add_bos / add_eos ask for
  // them (llama.cpp's add_special). parse_special: control and unknown-type pieces
  // written in the text ("<s>", "<|im_start|>") become their ids; user-defined
  // (added) tokens are matched in the text either way, as llama.cpp and HF do.
  std::vector<int32_t> Encode(std::string_view text, bool add_special, bool parse_special) const;

  // Concatenated pieces. SPM with a space prefix (any but kNone) drops the leading space of the
  // first piece that has text (what the encoder's space prefix added), as
  // SentencePiece's DecodeIds does. Control and unknown tokens are rendered only when
  // render_special. Throws ConfigError for an id outside the vocabulary.
  std::string Decode(std::span<const int32_t> ids, bool render_special = false) const;

  // The text of one token, as llama.cpp's token_to_piece: SPM pieces with the space
  // marker turned into ' ', byte-level pieces turned back into bytes, "<0xNN>" byte
  // tokens as their single byte (possibly part of a UTF-8 sequence), control/unknown
  // as "" unless render_special, user-defined as written.
  std::string TokenPiece(int32_t id, bool render_special = false) const;

  // TokenPiece for streaming output: with SPM and a space prefix, a piece that
  // directly follows BOS (or starts the stream: prev_id == kNoToken) loses its leading
  // space, as llama2.c's decode and SentencePiece do.
  std::string TokenPieceAfter(int32_t prev_id, int32_t id) const;

  const Vocab& vocab() const { return vocab_; }
  int32_t vocab_size() const { return vocab_.size(); }
  // Id of the piece spelled exactly `piece` (the last one when spelled twice, as in
  // llama.cpp), or kNoToken.
  int32_t Find(std::string_view piece) const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
  struct Fragment {
    std::string_view text;  // raw text when token == kNoToken
    int32_t token = kNoToken;
  };

  std::vector<Fragment> Partition(std::string_view text, bool parse_special) const;
  // Whether an SPM text fragment starting at byte `offset` of the whole text gets a
  // space in front under vocab_.space_prefix (see SpacePrefix).
  bool WantsSpacePrefix(std::string_view fragment, size_t offset, bool prev_special) const;
  void EncodeSpm(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeBpeWord(std::string_view word, std::string* scratch, std::vector<int32_t>* out) const;
  void AppendByteTokens(std::string_view bytes, std::vector<int32_t>* out) const;

  Vocab vocab_;
  StringMap<int32_t> piece_to_id_;
  // BPE merges by merged text: (byte length of the left part, rank) for each merge
  // that spells it, so a lookup needs no string building.
  StringMap<std::vector<std::pair<uint32_t, int32_t>>> merge_ranks_;
  // Byte fallback: SPM "<0xNN>" (or the one-byte piece); BPE the byte-level character.
  std::array<int32_t, 256> byte_to_id_{};
  std::vector<int32_t> special_ids_;  // control/user-defined/unknown, longest piece first
  std::unique_ptr<PreTokenizerRegexes> pre_;  // kBpe only
  bool ignore_merges_ = false;  // Llama 3: a word that is itself a piece is not merged
};

}  // namespace nibble::tokenizer
