// A tokenizer vocabulary that does not depend on any file format: pieces, scores,
// token types, merges, special ids and flags. The api layer fills it from GGUF arrays,
// llama2.c tokenizer.bin or tokenizer.json. Layer: tokenizer (level 1), may depend on
// core, nlohmann-json and PCRE2 only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tokenizer {

inline constexpr int32_t kNoToken = -1;

// GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,       // <s>, </s>, <|im_start|>: matched in text only with parse_special
  kUserDefined = 4,   // added tokens: always matched in the raw text first
  kUnused = 5,
  kByte = 6,          // "<0xNN>" byte-fallback pieces
};
inline constexpr int32_t kNumTokenTypes = 7;

// GGUF `tokenizer.ggml.model`: "llama" = SentencePiece-style BPE merged by piece score
// with byte fallback; "gpt2" = byte-level BPE merged by merge rank.
enum class VocabModel : int32_t { kSpm = 0, kBpe = 1 };
inline constexpr int32_t kNumVocabModels = 2;

// GGUF `tokenizer.ggml.pre`: which regex list splits text before byte-level BPE.
// Several GGUF names share one list (see the table in vocab.cc).
enum class PreTokenizer : int32_t {
  kDefault = 0,  // llama.cpp's fallback list
  kGpt2 = 1,     // GPT-2 (also mpt, olmo, phi-2)
  kLlama3 = 2,   // Llama 3 (also dbrx, smaug); digits in groups of 1..3
  kSmollm = 3,   // starcoder family, SmolLM/SmolLM2: every digit alone, then GPT-2
  kQwen2 = 4,    // Qwen2 (also stablelm2): every digit alone
};
inline constexpr int32_t kNumPreTokenizers = 5;

// SPM: which text fragments (the pieces of the text between special tokens) get a
// space in front before spaces become the marker and the fragment is merged.
enum class SpacePrefix : int32_t {
  kNone = 0,
  // llama.cpp's add_space_prefix and SentencePiece's add_dummy_prefix: every fragment
  // that starts the text or follows a special token, whatever it starts with. Also
  // what a tokenizer.json normalizer Prepend("▁") does.
  kLlamaCpp = 1,
  // tokenizers' Metaspace pre-tokenizer, prepend_scheme "first": only the fragment at
  // byte offset 0 of the text (none when the text starts with a special token), and
  // only when it does not already start with a space or the marker.
  kMetaspaceFirst = 2,
  // prepend_scheme "always": every fragment that does not already start with a space
  // or the marker.
  kMetaspaceAlways = 3,
};

// String <-> enum tables (the only place these names are compared). Unknown names
// throw ConfigError naming the key and the value found.
VocabModel ParseVocabModel(std::string_view name);
PreTokenizer ParsePreTokenizer(std::string_view name);
std::string_view VocabModelName(VocabModel m);
std::string_view PreTokenizerName(PreTokenizer p);

struct Vocab {
  VocabModel model = VocabModel::kSpm;
  PreTokenizer pre = PreTokenizer::kDefault;  // kBpe only
  // [V] token text as the format stores it: SPM pieces mark word starts with
  // `space_marker`; BPE pieces are spelled in the GPT-2 byte alphabet ("Ġ" = space).
  std::vector<std::string> pieces;
  std::vector<float> scores;      // [V] SPM merge priority (higher merges first); may be empty for kBpe
  std::vector<TokenType> types;   // [V]
  std::vector<std::string> merges;  // kBpe: "left right" in rank order (rank = index)
  int32_t bos_id = kNoToken, eos_id = kNoToken, unk_id = kNoToken, pad_id = kNoToken;
  bool add_bos = false;           // Encode(add_special=true) prepends bos_id
  bool add_eos = false;           // Encode(add_special=true) appends eos_id
  SpacePrefix space_prefix = SpacePrefix::kNone;  // SPM only; Decode drops it again unless kNone
  // SPM word-boundary marker inside pieces: U+2581 for GGUF, tokenizer.json and
  // tokenizer.model; a plain ' ' in llama2.c's tokenizer.bin.
  std::string space_marker = "\xE2\x96\x81";

  int32_t size() const { return static_cast<int32_t>(pieces.size()); }

  // llama2.c tokenizer.bin data (io::Llama2cTokenizer): raw-byte pieces whose word
  // marker is ' ', ids 0/1/2 = <unk>/<s>/</s>, byte pieces "<0xNN>". Types are derived:
  // 0 unknown, 1-2 control, "<0xNN>" byte, the rest normal; add_bos on and
  // space_prefix kLlamaCpp, as llama2.c's encode always adds BOS and the " " prefix.
  static Vocab FromLlama2c(std::vector<std::string> pieces, std::vector<float> scores);

  // Throws FormatError (naming `source`) when the arrays disagree in length, a special
  // id is out of range, a type is not one of TokenType, or a BPE merge has no
  // separating space.
  void Validate(std::string_view source) const;
};

// True for the exact spelling "<0xNN>" (two upper- or lower-case hex digits); sets *byte.
bool ParseBytePiece(std::string_view piece, uint8_t* byte);

}  // namespace nibble::tokenizer
