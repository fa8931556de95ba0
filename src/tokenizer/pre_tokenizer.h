// Regex pre-tokenization for byte-level BPE, run with PCRE2 (UTF + Unicode
// properties), never std::regex. Each PreTokenizer is an ordered list of regexes, as
// in llama.cpp (src/llama-vocab.cpp, llm_tokenizer_bpe): every regex splits each
// fragment left by the previous one into its matches and the text between them
// (both kept, so no byte is ever dropped).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace nibble::tokenizer {

class PreTokenizerRegexes {
 public:
  // Compiles the list for `pre` (JIT when available). NB_CHECKs that the built-in
  // patterns compile: they are constants of this file, not input.
  explicit PreTokenizerRegexes(PreTokenizer pre);
  ~PreTokenizerRegexes();
  PreTokenizerRegexes(PreTokenizerRegexes&&) noexcept;
  PreTokenizerRegexes& operator=(PreTokenizerRegexes&&) noexcept;

  // Splits well-formed UTF-8 `text` (run RepairUtf8 first) into fragments that
  // concatenate back to `text`; appends views into `text` to *out. Thread-safe.
  void Split(std::string_view text, std::vector<std::string_view>* out) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace nibble::tokenizer
