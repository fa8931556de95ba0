// Reader error paths and the UTF-8 validator.
#include "io/reader.h"

#include <fmt/core.h>

namespace nibble::io {

void Reader::Seek(uint64_t offset, std::string_view what) {
  if (offset > bytes_.size())
    Fail(fmt::format("{}: offset {} is past the end of the file ({} bytes)", what, offset, bytes_.size()));
  pos_ = static_cast<size_t>(offset);
}

void Reader::Fail(std::string_view msg) const { throw FormatError(fmt::format("{}: {}", source_, msg)); }

void Reader::FailShort(uint64_t n, std::string_view what) const {
  Fail(fmt::format("{}: expected {} bytes at offset {}, but only {} remain (file truncated?)", what, n, pos_,
                   remaining()));
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(len) > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

}  // namespace nibble::io
