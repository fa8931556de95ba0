// UTF-8 helpers for the tokenizers: validated character lengths, repair of invalid
// bytes, and code point encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nibble::tokenizer {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Length in bytes of the well-formed UTF-8 sequence starting at s[pos] (1..4), or 0
// when the bytes there are not one (stray continuation byte, truncated or overlong
// sequence, surrogate, or a code point above U+10FFFF). Requires pos < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t pos);

// Length of the character at s[pos] for splitting text into symbols: the sequence
// length when well formed, else 1 (one invalid byte is one symbol).
inline size_t Utf8CharLength(std::string_view s, size_t pos) {
  const size_t n = Utf8SequenceLength(s, pos);
  return n == 0 ? 1 : n;
}

// Decodes the well-formed sequence of `len` bytes at s[pos].
uint32_t Utf8Decode(std::string_view s, size_t pos, size_t len);

void AppendUtf8(std::string* out, uint32_t code_point);

// `s` with every byte that does not start a well-formed sequence replaced by U+FFFD,
// as llama.cpp's unicode_cpts_from_utf8 does before byte-level BPE.
std::string RepairUtf8(std::string_view s);

}  // namespace nibble::tokenizer
