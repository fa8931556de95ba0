// GPT-2's byte-level alphabet: every byte 0..255 is spelled as one printable Unicode
// character so BPE pieces are strings ("Ġ" U+0120 = space, "Ċ" U+010A = newline).
// Bytes in '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF keep their own code point;
// the other 68 bytes take U+0100, U+0101, ... in byte order (OpenAI's bytes_to_unicode).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace nibble::tokenizer {

inline constexpr uint32_t kNumByteLevelCodePoints = 256 + 68;  // highest is U+0143

constexpr bool ByteLevelKeepsItself(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// byte -> code point of its character.
inline constexpr std::array<uint16_t, 256> kByteToCodePoint = [] {
  std::array<uint16_t, 256> t{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) t[b] = static_cast<uint16_t>(ByteLevelKeepsItself(b) ? b : next++);
  return t;
}();

// code point -> byte, or -1 for code points outside the alphabet.
inline constexpr std::array<int16_t, kNumByteLevelCodePoints> kCodePointToByte = [] {
  std::array<int16_t, kNumByteLevelCodePoints> t{};
  for (auto& v : t) v = -1;
  for (uint32_t b = 0; b < 256; ++b) t[kByteToCodePoint[b]] = static_cast<int16_t>(b);
  return t;
}();

// Appends the byte-level spelling of `bytes` to *out.
void ByteLevelEncode(std::string_view bytes, std::string* out);

// Appends the bytes a byte-level piece stands for. A character outside the alphabet
// (possible only in added tokens) is copied through unchanged.
void ByteLevelDecode(std::string_view piece, std::string* out);

}  // namespace nibble::tokenizer
