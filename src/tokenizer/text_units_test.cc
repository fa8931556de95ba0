// UTF-8 helpers and the GPT-2 byte alphabet. References: RFC 3629 / Unicode Table 3-7
// for well-formedness; OpenAI's bytes_to_unicode (gpt-2 encoder.py) for the alphabet,
// whose fixed points and known spellings (space = U+0120 "Ġ", newline = U+010A "Ċ")
// are checked. Exact: no tolerance.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace nibble::tokenizer {
namespace {

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x96\x81", 0), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\xA6\x99", 0), 4u);
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);              // stray continuation byte
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0u);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\xAF", 0), 0u);      // overlong 3-byte
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // surrogate U+D800
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xE2\x96", 0), 0u);          // truncated
  EXPECT_EQ(Utf8SequenceLength("\xE2\x96" "a", 0), 0u);      // continuation missing
}

TEST(Utf8Test, RepairReplacesEachInvalidByte) {
  EXPECT_EQ(RepairUtf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(RepairUtf8("a\x80" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(RepairUtf8("\xE2\x96" "a"), "\xEF\xBF\xBD\xEF\xBF\xBD" "a");
}

TEST(Utf8Test, EncodeDecodeRoundTrip) {
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x2581u, 0x10348u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(&s, cp);
    ASSERT_EQ(Utf8SequenceLength(s, 0), s.size());
    EXPECT_EQ(Utf8Decode(s, 0, s.size()), cp);
  }
}

TEST(ByteLevelTest, AlphabetIsABijectionWithKnownSpellings) {
  std::set<uint16_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint16_t cp = kByteToCodePoint[b];
    EXPECT_TRUE(seen.insert(cp).second) << "byte " << b;
    EXPECT_EQ(kCodePointToByte[cp], b);
    if (ByteLevelKeepsItself(static_cast<uint32_t>(b))) {
      EXPECT_EQ(cp, b);
    }
  }
  EXPECT_EQ(kByteToCodePoint[' '], 0x120);   // "Ġ"
  EXPECT_EQ(kByteToCodePoint['\n'], 0x10A);  // "Ċ"
  EXPECT_EQ(kByteToCodePoint[0], 0x100);
  EXPECT_EQ(kByteToCodePoint[0xAD], 0x143);  // the last remapped byte (soft hyphen)
}

TEST(ByteLevelTest, EveryByteRoundTrips) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string encoded, decoded;
  ByteLevelEncode(all, &encoded);
  ByteLevelDecode(encoded, &decoded);
  EXPECT_EQ(decoded, all);
  std::string hello;
  ByteLevelEncode(" hello\n", &hello);
  EXPECT_EQ(hello, "\xC4\xA0hello\xC4\x8A");  // "Ġhello" + "Ċ"
}

}  // namespace
}  // namespace nibble::tokenizer
