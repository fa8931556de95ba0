// GPT-2 byte-level spelling and its inverse.
#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace nibble::tokenizer {

void ByteLevelEncode(std::string_view bytes, std::string* out) {
  for (char c : bytes) AppendUtf8(out, kByteToCodePoint[static_cast<uint8_t>(c)]);
}

void ByteLevelDecode(std::string_view piece, std::string* out) {
  for (size_t pos = 0; pos < piece.size();) {
    const size_t n = Utf8CharLength(piece, pos);
    const uint32_t cp = Utf8SequenceLength(piece, pos) == 0 ? kNumByteLevelCodePoints : Utf8Decode(piece, pos, n);
    if (cp < kNumByteLevelCodePoints && kCodePointToByte[cp] >= 0) {
      out->push_back(static_cast<char>(kCodePointToByte[cp]));
    } else {
      out->append(piece.substr(pos, n));
    }
    pos += n;
  }
}

}  // namespace nibble::tokenizer
