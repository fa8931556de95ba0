// Exhaustive tests of core/float_convert.h against an independent oracle written here:
// codes are decoded to exact doubles from their fields, and f32 values are rounded with
// frexp/ldexp and a floor-based ties-to-even on the exact quotient (no bit tricks).
#include "core/float_convert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace nibble {
namespace {

// Every comparison here is exact: conversions are defined bit for bit (C9).
constexpr uint64_t kTolMismatches = 0;  // exact conversions: zero differing outputs allowed

// 10^7 random f32 patterns per format (about 1 s at -O1, 5 s under ASan+UBSan);
// NIBBLE_FLOAT_RANDOM_COUNT overrides it, e.g. for a longer soak.
constexpr uint64_t kDefaultRandomCount = 10'000'000;
constexpr uint64_t kRandomSeed = 0x6E6962626C65ull;  // "nibble"

// A narrow format as fields: no code of float_convert.h is reused.
struct Spec {
  const char* name;
  int exp_bits;
  int mant_bits;
  int bias;
  bool ieee;  // true: all-ones exponent is inf/NaN; false: e4m3fn (only S.1111.111 is NaN)
  int MinExp() const { return 1 - bias; }
  uint32_t ExpMask() const { return (1u << exp_bits) - 1; }
  // Largest finite magnitude code.
  uint32_t MaxFinite() const { return ieee ? (ExpMask() << mant_bits) - 1 : (1u << (exp_bits + mant_bits)) - 2; }
  uint32_t SignBit() const { return 1u << (exp_bits + mant_bits); }
};

constexpr Spec kF16{"f16", 5, 10, 15, true};
constexpr Spec kBF16{"bf16", 8, 7, 127, true};
constexpr Spec kTF32{"tf32", 8, 10, 127, true};
constexpr Spec kE4M3{"e4m3fn", 4, 3, 7, false};
constexpr Spec kE5M2{"e5m2", 5, 2, 15, true};

// Exact value of a magnitude code (no sign); NaN for NaN codes, inf for inf.
double OracleDecode(const Spec& s, uint32_t code) {
  const uint32_t e = (code >> s.mant_bits) & s.ExpMask();
  const uint32_t m = code & ((1u << s.mant_bits) - 1);
  if (s.ieee && e == s.ExpMask()) return m == 0 ? INFINITY : NAN;
  if (!s.ieee && e == s.ExpMask() && m == (1u << s.mant_bits) - 1) return NAN;
  if (e == 0) return std::ldexp(static_cast<double>(m), s.MinExp() - s.mant_bits);
  return std::ldexp(static_cast<double>((1u << s.mant_bits) + m), static_cast<int>(e) - s.bias - s.mant_bits);
}

// NaN bits that the policy asks for when `f32` (a NaN) is narrowed.
uint32_t PolicyNaN(const Spec& s, uint32_t f32) {
  const uint32_t sign = f32 >> 31, payload = f32 & 0x7FFFFFu;
  if (&s == &kTF32) return (sign << 31) | 0x7F800000u | 0x400000u | (payload & ~0x1FFFu);
  if (!s.ieee || s.mant_bits < 3) return (sign ? s.SignBit() : 0) | (s.SignBit() - 1);  // fp8: S|0x7F
  const uint32_t quiet = 1u << (s.mant_bits - 1);
  return (sign ? s.SignBit() : 0) | (s.ExpMask() << s.mant_bits) | quiet | (payload >> (23 - s.mant_bits));
}

// Round an f32 to the format: returns the code (tf32 as f32 bits).
uint32_t OracleEncode(const Spec& s, float f) {
  const uint32_t fb = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return PolicyNaN(s, fb);
  const double a = std::fabs(static_cast<double>(f));
  uint64_t code = 0;
  if (std::isinf(a)) {
    code = UINT64_MAX;
  } else if (a != 0) {
    int e2 = 0;
    std::frexp(a, &e2);  // a = m * 2^e2, m in [0.5, 1): unbiased exponent e2 - 1
    const int exp = std::max(e2 - 1, s.MinExp());
    const double q = a / std::ldexp(1.0, exp - s.mant_bits);  // exact: power-of-two scaling
    const double fl = std::floor(q);
    uint64_t qi = static_cast<uint64_t>(fl);
    if (q - fl > 0.5 || (q - fl == 0.5 && (qi & 1))) ++qi;
    // Binade offset plus quotient: a carry into 2^(mant+1) lands on the next binade.
    code = (static_cast<uint64_t>(exp - s.MinExp()) << s.mant_bits) + qi;
  }
  if (code > s.MaxFinite()) code = s.ieee ? s.MaxFinite() + 1 : s.MaxFinite();  // inf or saturate
  const uint32_t c = static_cast<uint32_t>(code);
  const bool neg = fb >> 31;
  if (&s == &kTF32) return (neg ? 0x80000000u : 0) | (c << 13);
  return (neg ? s.SignBit() : 0) | c;
}

uint32_t Encode(const Spec& s, float f) {
  if (&s == &kF16) return F32ToF16(f);
  if (&s == &kBF16) return F32ToBF16(f);
  if (&s == &kTF32) return F32Bits(F32ToTF32(f));
  if (&s == &kE4M3) return F32ToF8E4M3(f);
  return F32ToF8E5M2(f);
}

float Decode(const Spec& s, uint32_t code) {
  if (&s == &kF16) return F16ToF32(static_cast<uint16_t>(code));
  if (&s == &kBF16) return BF16ToF32(static_cast<uint16_t>(code));
  if (&s == &kE4M3) return F8E4M3ToF32(static_cast<uint8_t>(code));
  return F8E5M2ToF32(static_cast<uint8_t>(code));
}

const Spec* const kNarrow[] = {&kF16, &kBF16, &kE4M3, &kE5M2};  // formats with their own storage
const Spec* const kAll[] = {&kF16, &kBF16, &kTF32, &kE4M3, &kE5M2};

// Compares Encode with OracleEncode on every input; prints the first few mismatches.
uint64_t CountEncodeMismatches(const Spec& s, const std::vector<uint32_t>& inputs) {
  uint64_t bad = 0;
  for (uint32_t b : inputs) {
    const float f = F32FromBits(b);
    const uint32_t got = Encode(s, f), want = OracleEncode(s, f);
    if (got != want && ++bad <= 5)
      ADD_FAILURE() << s.name << ": f32 0x" << std::hex << b << " -> 0x" << got << ", oracle 0x" << want;
  }
  return bad;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

TEST(FloatConvert, AnchorsFromTheSpecs) {
  // Hand-checked values (IEEE 754-2008 binary16; OCP 8-bit FP spec v1.0 tables) so that
  // an oracle bug cannot hide behind agreement with the code.
  EXPECT_EQ(F32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65519.996f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // tie between 65504 and 2^16 goes to even: inf
  EXPECT_EQ(F32ToF16(0x1p-24f), 0x0001);
  EXPECT_EQ(F32ToF16(0x1p-25f), 0x0000);  // tie with 0 goes to even
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToBF16(1.00390625f), 0x3F80);  // 1 + 2^-8: tie, to even
  EXPECT_EQ(F32ToBF16(1.01171875f), 0x3F82);  // 1 + 3*2^-8: tie, to even (up)
  EXPECT_EQ(F32ToF8E4M3(448.0f), 0x7E);
  EXPECT_EQ(F32ToF8E4M3(1e9f), 0x7E);
  EXPECT_EQ(F32ToF8E4M3(-INFINITY), 0xFE);
  EXPECT_EQ(F32ToF8E4M3(0x1p-9f), 0x01);
  EXPECT_EQ(F32ToF8E5M2(57344.0f), 0x7B);
  EXPECT_EQ(F32ToF8E5M2(61440.0f), 0x7C);
  EXPECT_EQ(F32ToF8E5M2(0x1p-16f), 0x01);
  EXPECT_EQ(F32Bits(F32ToTF32(1.0f + 0x1p-11f)), F32Bits(1.0f));
  EXPECT_EQ(F8E4M3ToF32(0x7E), 448.0f);
  EXPECT_EQ(F8E5M2ToF32(0x7B), 57344.0f);
  // Oracle anchors: the same facts through the oracle.
  EXPECT_EQ(OracleEncode(kF16, 65520.0f), 0x7C00u);
  EXPECT_EQ(OracleEncode(kE4M3, 464.0f), 0x7Eu);
  EXPECT_EQ(OracleDecode(kE4M3, 0x01), 0x1p-9);
}

TEST(FloatConvert, DecodeEveryCode) {
  for (const Spec* s : kNarrow) {
    uint64_t bad = 0;
    const uint32_t n = 2 * s->SignBit();
    for (uint32_t c = 0; c < n; ++c) {
      const bool neg = c & s->SignBit();
      const double v = OracleDecode(*s, c & (s->SignBit() - 1));
      const uint32_t got = F32Bits(Decode(*s, c));
      uint32_t want;
      if (std::isnan(v)) {
        // NaN: exact payload shift for IEEE formats; e4m3fn has none, gives sign|qNaN.
        const uint32_t payload = c & ((1u << s->mant_bits) - 1);
        want = (neg ? 0x80000000u : 0) | (s->ieee ? 0x7F800000u | (payload << (23 - s->mant_bits)) : 0x7FC00000u);
      } else {
        want = F32Bits(static_cast<float>(neg ? -v : v));  // every code is exact in f32
      }
      if (got != want && ++bad <= 5)
        ADD_FAILURE() << s->name << ": code 0x" << std::hex << c << " -> 0x" << got << ", oracle 0x" << want;
    }
    EXPECT_EQ(bad, kTolMismatches) << s->name;
  }
}

TEST(FloatConvert, RoundTripEveryCode) {
  for (const Spec* s : kNarrow) {
    uint64_t bad = 0;
    const uint32_t n = 2 * s->SignBit();
    for (uint32_t c = 0; c < n; ++c) {
      const float f = Decode(*s, c);
      uint32_t want = c;
      if (std::isnan(f)) want = PolicyNaN(*s, F32Bits(f));  // quiet bit set (or the fp8 NaN)
      const uint32_t got = Encode(*s, f);
      if (got != want && ++bad <= 5)
        ADD_FAILURE() << s->name << ": code 0x" << std::hex << c << " round-trips to 0x" << got;
    }
    EXPECT_EQ(bad, kTolMismatches) << s->name;
  }
}

TEST(FloatConvert, NaNPolicyBits) {
  // Quiet bit set, top payload bits kept, sign kept (f16/bf16/tf32); fp8: S|0x7F.
  EXPECT_EQ(F32ToF16(F32FromBits(0x7F800001u)), 0x7E00);
  EXPECT_EQ(F32ToF16(F32FromBits(0xFFA5A5A5u)), 0xFF2D);
  EXPECT_EQ(F32ToBF16(F32FromBits(0x7F800001u)), 0x7FC0);
  EXPECT_EQ(F32ToBF16(F32FromBits(0xFF812345u)), 0xFFC1);
  EXPECT_EQ(F32Bits(F32ToTF32(F32FromBits(0x7F80FFFFu))), 0x7FC0E000u);
  EXPECT_EQ(F32ToF8E4M3(F32FromBits(0xFFC00000u)), 0xFF);
  EXPECT_EQ(F32ToF8E5M2(F32FromBits(0x7F800001u)), 0x7F);
  EXPECT_EQ(F32Bits(F16ToF32(0x7C01)), 0x7F802000u);  // decoding keeps a signalling payload as is
  // Every NaN class through the oracle: all f32 NaN payload bit positions, both signs.
  std::vector<uint32_t> nans;
  for (uint32_t sign : {0u, 0x80000000u})
    for (int bit = 0; bit < 23; ++bit) {
      nans.push_back(sign | 0x7F800000u | (1u << bit));
      nans.push_back(sign | (0x7FFFFFFFu ^ (bit ? (1u << bit) : 0u)));
    }
  for (const Spec* s : kAll) EXPECT_EQ(CountEncodeMismatches(*s, nans), kTolMismatches) << s->name;
}

TEST(FloatConvert, EveryExponentBoundary) {
  // Every f32 exponent, both signs, mantissas at both ends, around the middle and
  // around each format's rounding position (bit 12/13, 15/16, 19/20, 20/21).
  std::vector<uint32_t> in;
  const uint32_t mants[] = {0,        1,        2,        3,        0x0FFF,   0x1000,   0x1001,   0x1FFF,
                            0x2000,   0x3000,   0x7FFF,   0x8000,   0x8001,   0xFFFF,   0x10000,  0x18000,
                            0x7FFFF,  0x80000,  0x80001,  0xFFFFF,  0x100000, 0x180000, 0x3FFFFF, 0x400000,
                            0x400001, 0x7FFFFE, 0x7FFFFF};
  for (uint32_t sign : {0u, 0x80000000u})
    for (uint32_t e = 0; e < 256; ++e)
      for (uint32_t m : mants) in.push_back(sign | (e << 23) | m);
  for (const Spec* s : kAll) EXPECT_EQ(CountEncodeMismatches(*s, in), kTolMismatches) << s->name;
}

// Midpoints between every pair of adjacent positive finite codes (and between the max
// and the first value past it), +-1 f32 ulp, both signs.
std::vector<uint32_t> TieSet(const Spec& s) {
  std::vector<uint32_t> in;
  const uint32_t max = s.MaxFinite();
  for (uint32_t c = 0; c <= max; ++c) {
    const double lo = OracleDecode(s, c);
    const double hi = c < max ? OracleDecode(s, c + 1) : lo + (lo - OracleDecode(s, c - 1));
    const double mid = (lo + hi) / 2;
    const float midf = static_cast<float>(mid);
    if (static_cast<double>(midf) != mid || std::isinf(midf)) {
      ADD_FAILURE() << s.name << ": midpoint above code " << c << " is not an f32";
      continue;
    }
    const uint32_t b = F32Bits(midf);
    for (uint32_t x : {b, b - 1, b + 1}) in.insert(in.end(), {x, x | 0x80000000u});
  }
  return in;
}

TEST(FloatConvert, EveryTieAndItsNeighbours) {
  for (const Spec* s : kAll) EXPECT_EQ(CountEncodeMismatches(*s, TieSet(*s)), kTolMismatches) << s->name;
}

TEST(FloatConvert, SubnormalRangesDense) {
  // Every f32 in each format's subnormal range and the first binade above it, at a
  // stride that is odd so every low-bit pattern gets hit.
  for (const Spec* s : kAll) {
    const uint32_t top = F32Bits(std::ldexp(1.0f, s->MinExp() + 1));
    const uint32_t bottom = F32Bits(std::ldexp(1.0f, s->MinExp() - s->mant_bits - 2));
    std::vector<uint32_t> in;
    for (uint64_t b = bottom; b < top; b += 97) in.insert(in.end(), {uint32_t(b), uint32_t(b) | 0x80000000u});
    EXPECT_EQ(CountEncodeMismatches(*s, in), kTolMismatches) << s->name;
  }
  // f32 subnormals and zeros.
  std::vector<uint32_t> tiny;
  for (uint32_t b = 0; b < 0x800000u; b += 4099) tiny.insert(tiny.end(), {b, b | 0x80000000u});
  for (const Spec* s : kAll) EXPECT_EQ(CountEncodeMismatches(*s, tiny), kTolMismatches) << s->name;
}

TEST(FloatConvert, RandomBitPatterns) {
  uint64_t count = kDefaultRandomCount;
  if (const char* env = std::getenv("NIBBLE_FLOAT_RANDOM_COUNT")) count = std::strtoull(env, nullptr, 10);
  for (const Spec* s : kAll) {
    uint64_t state = kRandomSeed, bad = 0;
    for (uint64_t i = 0; i < count; ++i) {
      const uint32_t b = static_cast<uint32_t>(SplitMix64(state) >> 32);
      const float f = F32FromBits(b);
      const uint32_t got = Encode(*s, f), want = OracleEncode(*s, f);
      if (got != want && ++bad <= 5)
        ADD_FAILURE() << s->name << ": f32 0x" << std::hex << b << " -> 0x" << got << ", oracle 0x" << want;
    }
    EXPECT_EQ(bad, kTolMismatches) << s->name << " over " << count << " patterns";
  }
}

}  // namespace
}  // namespace nibble
