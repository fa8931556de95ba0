// Python str semantics on UTF-8 text for the Jinja subset (see text.h).
#include "tokenizer/jinja/text.h"

#include "tokenizer/utf8.h"

namespace nibble::tokenizer::jinja {
namespace {

// Python's surrogateescape range: an invalid byte b is carried as U+DC80 + b.
constexpr uint32_t kEscapeBase = 0xDC00;

bool InStrip(uint32_t c, const std::optional<std::vector<uint32_t>>& chars) {
  if (!chars) return IsPySpace(c);
  for (const uint32_t x : *chars)
    if (x == c) return true;
  return false;
}

bool IsCased(uint32_t c) { return UpperCp(c) != c || LowerCp(c) != c; }

}  // namespace

std::vector<uint32_t> CodePoints(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = Utf8SequenceLength(s, pos);
    if (n == 0) {
      out.push_back(kEscapeBase + static_cast<unsigned char>(s[pos]));
      ++pos;
    } else {
      out.push_back(Utf8Decode(s, pos, n));
      pos += n;
    }
  }
  return out;
}

void AppendCodePoint(std::string* out, uint32_t c) {
  if (c >= kEscapeBase + 0x80 && c <= kEscapeBase + 0xFF) {
    out->push_back(static_cast<char>(c - kEscapeBase));
    return;
  }
  AppendUtf8(out, c);
}

std::string FromCodePoints(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t k = begin; k < end; ++k) AppendCodePoint(&out, cps[k]);
  return out;
}

bool IsPySpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string Strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  const std::vector<uint32_t> cps = CodePoints(s);
  std::optional<std::vector<uint32_t>> set;
  if (chars) set = CodePoints(*chars);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && InStrip(cps[b], set)) ++b;
  if (right)
    while (e > b && InStrip(cps[e - 1], set)) --e;
  return FromCodePoints(cps, b, e);
}

std::vector<std::string> Split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t at = s.find(*sep, pos);
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, at - pos));
      pos = at + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  const std::vector<uint32_t> cps = CodePoints(s);
  size_t k = 0;
  while (true) {
    while (k < cps.size() && IsPySpace(cps[k])) ++k;
    if (k == cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t e = cps.size();
      while (e > k && IsPySpace(cps[e - 1])) --e;
      out.push_back(FromCodePoints(cps, k, e));
      break;
    }
    const size_t start = k;
    while (k < cps.size() && !IsPySpace(cps[k])) ++k;
    out.push_back(FromCodePoints(cps, start, k));
  }
  return out;
}

std::string Replace(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` before every character and at the end.
    const std::vector<uint32_t> cps = CodePoints(s);
    int64_t done = 0;
    for (const uint32_t c : cps) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      AppendCodePoint(&out, c);
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    const size_t at = s.find(from, pos);
    if (at == std::string_view::npos) break;
    out += s.substr(pos, at - pos);
    out += to;
    pos = at + from.size();
  }
  out += s.substr(pos);
  return out;
}

uint32_t UpperCp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 0x20;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if ((c >= 0x100 && c <= 0x137 && c != 0x131) || (c >= 0x14A && c <= 0x177)) return c & ~1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 0) ? c - 1 : c;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 0x20;
  if (c == 0x3C2) return 0x3A3;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 0x25;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 0x3F;
  if (c >= 0x430 && c <= 0x44F) return c - 0x20;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  return c;
}

uint32_t LowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x137 && c != 0x130) || (c >= 0x14A && c <= 0x177)) return c | 1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

std::string Upper(std::string_view s) {
  std::string out;
  for (const uint32_t c : CodePoints(s)) AppendCodePoint(&out, UpperCp(c));
  return out;
}

std::string Lower(std::string_view s) {
  std::string out;
  for (const uint32_t c : CodePoints(s)) AppendCodePoint(&out, LowerCp(c));
  return out;
}

std::string Capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (const uint32_t c : CodePoints(s)) {
    AppendCodePoint(&out, first ? UpperCp(c) : LowerCp(c));
    first = false;
  }
  return out;
}

std::string PyTitle(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (const uint32_t c : CodePoints(s)) {
    if (IsCased(c)) {
      AppendCodePoint(&out, prev_cased ? LowerCp(c) : UpperCp(c));
      prev_cased = true;
    } else {
      AppendCodePoint(&out, c);
      prev_cased = false;
    }
  }
  return out;
}

std::string JinjaTitle(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (const uint32_t c : CodePoints(s)) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || IsPySpace(c);
    if (sep) {
      AppendCodePoint(&out, c);
      word_start = true;
    } else {
      AppendCodePoint(&out, word_start ? UpperCp(c) : LowerCp(c));
      word_start = false;
    }
  }
  return out;
}

}  // namespace nibble::tokenizer::jinja
