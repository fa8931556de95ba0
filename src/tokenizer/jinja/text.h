// String operations of the Jinja subset with Python's semantics on code points:
// whitespace as str.isspace sees it, strip/split, case mapping and str.title.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tokenizer::jinja {

// Code points of UTF-8 text; an invalid byte becomes one code point 0xDC80 + byte
// (Python's surrogateescape), so AppendCodePoint restores the original bytes.
std::vector<uint32_t> CodePoints(std::string_view s);
void AppendCodePoint(std::string* out, uint32_t c);
std::string FromCodePoints(const std::vector<uint32_t>& cps, size_t begin, size_t end);

bool IsPySpace(uint32_t c);  // str.isspace

// str.strip / lstrip / rstrip: `chars` absent strips whitespace.
std::string Strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit): sep absent splits on whitespace runs (no empty pieces).
std::vector<std::string> Split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
// str.replace(old, new, count); count < 0 replaces all.
std::string Replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; other
// characters are left as they are.
uint32_t UpperCp(uint32_t c);
uint32_t LowerCp(uint32_t c);
std::string Upper(std::string_view s);
std::string Lower(std::string_view s);
std::string Capitalize(std::string_view s);  // str.capitalize and the capitalize filter
std::string PyTitle(std::string_view s);     // str.title: a letter after a non-letter is upper-cased
std::string JinjaTitle(std::string_view s);  // the title filter: words split at [-\s({\[<]+

}  // namespace nibble::tokenizer::jinja
