// libFuzzer target: tokenizer.json bytes through VocabFromTokenizerJson and, when they
// parse, a Tokenizer built on the result encoding and decoding a fixed mixed-script
// string. Any nibble::Error is an accepted outcome; a crash, an NB_CHECK abort or a
// sanitizer report is a bug. Seeds: tests/golden/tokenizer/*.json.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Covers letters, digits, spaces, an SPM marker, byte fallback and special tokens.
  constexpr std::string_view kText = "Hello w\xC3\xB6rld 12345  \xE2\x96\x81x<s> \xF0\x9F\xA6\x99\n<|endoftext|>'s";
  try {
    nibble::tokenizer::Vocab v =
        nibble::tokenizer::VocabFromTokenizerJson({reinterpret_cast<const char*>(data), size}, "fuzz.json");
    const nibble::tokenizer::Tokenizer tok(std::move(v), "fuzz.json");
    const std::vector<int32_t> ids = tok.Encode(kText, true, true);
    if (tok.Decode(ids, true).size() > 64 * kText.size()) __builtin_trap();
  } catch (const nibble::Error&) {
  }
  return 0;
}
