// Reader: a bounds-checked little-endian cursor over bytes in memory. Every
// parser reads through it, so fuzzers can feed parsers memory, and every count,
// length and offset is checked against the bytes that remain before it is used.
// Layer rule: io depends on core, quant (layouts) and nlohmann-json.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "nibble/error.h"

namespace nibble::io {

class Reader {
 public:
  // `source` names the file in error messages.
  Reader(std::span<const uint8_t> bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  const std::string& source() const { return source_; }
  std::span<const uint8_t> bytes() const { return bytes_; }

  // Reads a trivially copyable little-endian value; `what` names the field.
  template <typename T>
  T Read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    Need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::span<const uint8_t> ReadBytes(uint64_t n, std::string_view what) {
    Need(n, what);
    auto s = bytes_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string_view ReadStringView(uint64_t n, std::string_view what) {
    auto s = ReadBytes(n, what);
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  void Skip(uint64_t n, std::string_view what) { ReadBytes(n, what); }
  void Seek(uint64_t offset, std::string_view what);

  // Throws FormatError("<source>: <msg>").
  [[noreturn]] void Fail(std::string_view msg) const;

 private:
  void Need(uint64_t n, std::string_view what) const {
    if (n > remaining()) FailShort(n, what);
  }
  [[noreturn]] void FailShort(uint64_t n, std::string_view what) const;

  std::span<const uint8_t> bytes_;
  std::string source_;
  size_t pos_ = 0;
};

// True when `s` is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace nibble::io
