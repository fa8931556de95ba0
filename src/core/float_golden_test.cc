// Compares core/float_convert.h with golden tables written by numpy (f16) and torch
// (bf16, float8_e4m3fn, float8_e5m2); see scripts/goldens/make_float_goldens.py and
// tests/golden/float/VERSIONS.txt for the library versions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/float_convert.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble {
namespace {

// Non-NaN outputs must match the libraries bit for bit. For NaN only NaN-ness is
// compared, because the libraries' NaN bits differ from our policy (measured, torch 2.15,
// numpy 2.4): torch f32->bf16 writes 0xFFFF for every NaN (we keep sign and payload and set
// the quiet bit); numpy f32->f16 keeps the payload without setting the quiet bit (torch's
// f16 matches ours); torch e4m3fn->f32 gives sign|0x7FF00000, e5m2->f32 sets the quiet bit.
constexpr uint64_t kTolMismatches = 0;  // conversions are exact: no differing output allowed

template <typename T>
std::vector<T> LoadGolden(const std::string& name, size_t expected_count) {
  const std::vector<uint8_t> bytes = test::ReadFileBytes(test::Golden("float/" + name));
  EXPECT_EQ(bytes.size(), expected_count * sizeof(T)) << name;
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));  // files are little-endian, as x86
  return out;
}

constexpr size_t kNumInputs = 40960;  // kNumInputs in make_float_goldens.py

// got/want are the narrow code (or f32 bits); `is_nan` says whether the golden is a NaN.
uint64_t CheckEncode(const char* name, uint32_t (*encode)(float), bool (*is_nan)(uint32_t),
                     const std::vector<uint32_t>& in, const std::vector<uint32_t>& want) {
  uint64_t bad = 0;
  for (size_t i = 0; i < in.size() && i < want.size(); ++i) {
    const uint32_t got = encode(F32FromBits(in[i]));
    const bool ok = is_nan(want[i]) ? is_nan(got) : got == want[i];
    if (!ok && ++bad <= 5)
      ADD_FAILURE() << name << ": f32 0x" << std::hex << in[i] << " -> 0x" << got << ", library 0x" << want[i];
  }
  return bad;
}

template <typename T>
std::vector<uint32_t> Widen(const std::vector<T>& v) {
  return std::vector<uint32_t>(v.begin(), v.end());
}

bool F16IsNaN(uint32_t h) { return (h & 0x7FFFu) > 0x7C00u; }
bool BF16IsNaN(uint32_t b) { return (b & 0x7FFFu) > 0x7F80u; }
bool E4M3IsNaN(uint32_t b) { return (b & 0x7Fu) == 0x7Fu; }
bool E5M2IsNaN(uint32_t b) { return (b & 0x7Fu) > 0x7Cu; }
bool F32IsNaN(uint32_t b) { return (b & 0x7FFFFFFFu) > 0x7F800000u; }

TEST(FloatGolden, F32ToNarrowMatchesLibraries) {
  const auto in = LoadGolden<uint32_t>("f32_inputs.bin", kNumInputs);
  EXPECT_EQ(CheckEncode("f16 (numpy)", [](float f) -> uint32_t { return F32ToF16(f); }, F16IsNaN, in,
                        Widen(LoadGolden<uint16_t>("f32_to_f16.bin", kNumInputs))),
            kTolMismatches);
  EXPECT_EQ(CheckEncode("bf16 (torch)", [](float f) -> uint32_t { return F32ToBF16(f); }, BF16IsNaN, in,
                        Widen(LoadGolden<uint16_t>("f32_to_bf16.bin", kNumInputs))),
            kTolMismatches);
  EXPECT_EQ(CheckEncode("e4m3fn (torch)", [](float f) -> uint32_t { return F32ToF8E4M3(f); }, E4M3IsNaN, in,
                        Widen(LoadGolden<uint8_t>("f32_to_e4m3fn.bin", kNumInputs))),
            kTolMismatches);
  EXPECT_EQ(CheckEncode("e5m2 (torch)", [](float f) -> uint32_t { return F32ToF8E5M2(f); }, E5M2IsNaN, in,
                        Widen(LoadGolden<uint8_t>("f32_to_e5m2.bin", kNumInputs))),
            kTolMismatches);
}

// Every code of a format decoded, against the library's f32 bits (index = code).
uint64_t CheckDecode(const char* name, float (*decode)(uint32_t), const std::vector<uint32_t>& want) {
  uint64_t bad = 0;
  for (uint32_t c = 0; c < want.size(); ++c) {
    const uint32_t got = F32Bits(decode(c));
    const bool ok = F32IsNaN(want[c]) ? F32IsNaN(got) : got == want[c];
    if (!ok && ++bad <= 5)
      ADD_FAILURE() << name << ": code 0x" << std::hex << c << " -> 0x" << got << ", library 0x" << want[c];
  }
  return bad;
}

TEST(FloatGolden, EveryCodeDecodesAsLibraries) {
  EXPECT_EQ(CheckDecode("f16 (numpy)", [](uint32_t c) { return F16ToF32(static_cast<uint16_t>(c)); },
                        LoadGolden<uint32_t>("f16_to_f32.bin", 65536)),
            kTolMismatches);
  EXPECT_EQ(CheckDecode("bf16 (torch)", [](uint32_t c) { return BF16ToF32(static_cast<uint16_t>(c)); },
                        LoadGolden<uint32_t>("bf16_to_f32.bin", 65536)),
            kTolMismatches);
  EXPECT_EQ(CheckDecode("e4m3fn (torch)", [](uint32_t c) { return F8E4M3ToF32(static_cast<uint8_t>(c)); },
                        LoadGolden<uint32_t>("e4m3fn_to_f32.bin", 256)),
            kTolMismatches);
  EXPECT_EQ(CheckDecode("e5m2 (torch)", [](uint32_t c) { return F8E5M2ToF32(static_cast<uint8_t>(c)); },
                        LoadGolden<uint32_t>("e5m2_to_f32.bin", 256)),
            kTolMismatches);
}

TEST(FloatGolden, NumpyF16DecodeKeepsNaNPayloadExactly) {
  // numpy decodes f16 NaNs without touching the payload, as our policy does: whole bits match.
  const auto want = LoadGolden<uint32_t>("f16_to_f32.bin", 65536);
  uint64_t bad = 0;
  for (uint32_t c = 0; c < want.size(); ++c) bad += F32Bits(F16ToF32(static_cast<uint16_t>(c))) != want[c];
  EXPECT_EQ(bad, kTolMismatches);
}

}  // namespace
}  // namespace nibble
