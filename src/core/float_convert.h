// Exact scalar conversions between f32 and the narrow float formats, in integer
// arithmetic (no dependence on the FPU rounding mode, FTZ/DAZ or -ffast-math).
// These are the reference for the bulk kernels in kernels/convert.h, which must match
// them bit for bit.
//
// Rounding: f32 -> narrow is round-to-nearest, ties-to-even, with subnormals kept.
// Overflow: f16, bf16, tf32 and e5m2 round to +-inf (IEEE 754). e4m3fn has no inf:
//   every finite value beyond its max 448 and +-inf saturate to +-448 (0x7E with the
//   sign); NaN stays NaN. This is PyTorch's `.to(torch.float8_e4m3fn)` (checked on
//   torch 2.15: older releases turned overflow into NaN).
// NaN policy (docs/NUMERICS.md):
//   f16, bf16, tf32: the sign and the top payload bits are kept and the quiet bit is set,
//     as x86 F16C (vcvtps2ph), AVX512-BF16 (vcvtneps2bf16) and torch's f16 cast do
//     (numpy keeps the payload without the quiet bit; torch's bf16 writes 0xFFFF; see
//     docs/NUMERICS.md).
//   e4m3fn, e5m2: sign | 0x7F, PyTorch's fp8 cast (one NaN per sign).
// narrow -> f32 is exact for every pattern, NaN payloads included.
#pragma once

#include <bit>
#include <cstdint>

namespace nibble {

inline uint32_t F32Bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float F32FromBits(uint32_t u) { return std::bit_cast<float>(u); }

namespace detail {

// RNE of (mant24 >> shift) for shift in [1, 31]; mant24 < 2^24.
constexpr uint32_t ShiftRoundEven(uint32_t mant, uint32_t shift) {
  if (shift >= 26) return 0;  // value < 1/4 ulp: rounds to zero
  const uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0);
}

// |x| (f32 bits, finite, below the target's smallest normal) as a count of the
// target's subnormal steps 2^sub_exp, rounded to nearest even. May return 2^mant_bits,
// which is exactly the encoding of the smallest normal.
constexpr uint32_t SubnormalSteps(uint32_t abs_bits, int sub_exp) {
  const uint32_t e = abs_bits >> 23;
  if (e == 0) return 0;  // f32 subnormals are far below every target's subnormal range
  const uint32_t mant = (abs_bits & 0x7FFFFFu) | 0x800000u;
  const int shift = 150 + sub_exp - static_cast<int>(e);
  return ShiftRoundEven(mant, static_cast<uint32_t>(shift));
}

// RNE that keeps the top (23 - drop) mantissa bits of a normal f32 and rebiases
// the exponent by `rebias` (127 - target bias); returns the target's bits.
constexpr uint32_t NormalRound(uint32_t abs_bits, uint32_t drop, uint32_t rebias) {
  const uint32_t r = abs_bits + ((1u << (drop - 1)) - 1) + ((abs_bits >> drop) & 1);
  return (r - (rebias << 23)) >> drop;
}

}  // namespace detail

// ---- f16 (IEEE binary16: 1 sign, 5 exponent bits, bias 15, 10 mantissa bits) ----
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return F32FromBits(sign | 0x7F800000u | (mant << 13));
  if (exp != 0) return F32FromBits(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return F32FromBits(sign);
  // Subnormal: mant * 2^-24 is exact in f32.
  return F32FromBits(sign | F32Bits(static_cast<float>(mant) * 0x1p-24f));
}

inline uint16_t F32ToF16(float f) {
  const uint32_t bits = F32Bits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t x = bits & 0x7FFFFFFFu;
  if (x > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((x >> 13) & 0x3FFu);  // NaN
  if (x >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520: rounds to inf (or is inf)
  if (x >= 0x38800000u) return sign | static_cast<uint16_t>(detail::NormalRound(x, 13, 112));
  return sign | static_cast<uint16_t>(detail::SubnormalSteps(x, -24));
}

// ---- bf16 (the top half of an f32) ----
inline float BF16ToF32(uint16_t b) { return F32FromBits(static_cast<uint32_t>(b) << 16); }

inline uint16_t F32ToBF16(float f) {
  const uint32_t bits = F32Bits(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // NaN
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// ---- tf32 (f32 layout, 10 mantissa bits kept; stored as a full f32) ----
inline float F32ToTF32(float f) {
  const uint32_t bits = F32Bits(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return F32FromBits((bits | 0x400000u) & ~0x1FFFu);  // NaN
  return F32FromBits((bits + 0xFFFu + ((bits >> 13) & 1u)) & ~0x1FFFu);
}

// ---- f8 e4m3fn (bias 7, no inf, NaN = S.1111.111, max 448, subnormal step 2^-9) ----
inline float F8E4M3ToF32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xFu;
  const uint32_t mant = b & 0x7u;
  if ((b & 0x7Fu) == 0x7Fu) return F32FromBits(sign | 0x7FC00000u);
  if (exp != 0) return F32FromBits(sign | ((exp + 120) << 23) | (mant << 20));
  // Subnormal mant * 2^-9: exact in f32.
  return F32FromBits(sign | F32Bits(static_cast<float>(mant) * 0x1p-9f));
}

inline uint8_t F32ToF8E4M3(float f) {
  const uint32_t bits = F32Bits(f);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t x = bits & 0x7FFFFFFFu;
  if (x > 0x7F800000u) return sign | 0x7Fu;   // NaN
  if (x >= 0x43E00000u) return sign | 0x7Eu;  // >= 448 and inf: saturate to 448
  if (x >= 0x3C800000u) return sign | static_cast<uint8_t>(detail::NormalRound(x, 20, 120));
  return sign | static_cast<uint8_t>(detail::SubnormalSteps(x, -9));
}

// ---- f8 e5m2 (bias 15, inf = S.11111.00, NaN above; the top byte of an f16) ----
inline float F8E5M2ToF32(uint8_t b) { return F16ToF32(static_cast<uint16_t>(b << 8)); }

inline uint8_t F32ToF8E5M2(float f) {
  const uint32_t bits = F32Bits(f);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t x = bits & 0x7FFFFFFFu;
  if (x > 0x7F800000u) return sign | 0x7Fu;     // NaN
  if (x >= 0x47700000u) return sign | 0x7Cu;    // >= 61440: rounds to inf (or is inf)
  if (x >= 0x38800000u) return sign | static_cast<uint8_t>(detail::NormalRound(x, 21, 112));
  return sign | static_cast<uint8_t>(detail::SubnormalSteps(x, -16));
}

}  // namespace nibble
