// Why nibble accumulates f16/bf16 products in f32 and int8 products in int32
// (docs/NUMERICS.md "Accumulation types"): narrow accumulators lose or overflow.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/float_convert.h"

namespace nibble {
namespace {

// Sums of f16 values, rounded after each step. An f32 add of two f16 values followed
// by one rounding to f16 is the correctly rounded f16 add: 24 >= 2*11 + 2 bits, so the
// double rounding is harmless.
uint16_t AddF16(uint16_t acc, float x) { return F32ToF16(F16ToF32(acc) + x); }
uint16_t AddBF16(uint16_t acc, float x) { return F32ToBF16(BF16ToF32(acc) + x); }

constexpr double kF32Eps = 0x1p-24;  // unit roundoff of f32 (half an ulp at 1)

TEST(Accumulation, F16AccumulatorStallsAt2048) {
  // 4096 products 1*1: f16 has 11 significant bits, so 2048 + 1 = 2049 is a tie between
  // 2048 and 2050 and rounds to even (2048) forever. f32 is exact up to 2^24.
  uint16_t acc16 = 0;
  float acc32 = 0.0f;
  for (int i = 0; i < 4096; ++i) {
    const float p = F16ToF32(0x3C00) * F16ToF32(0x3C00);  // 1.0 * 1.0 in f16 inputs
    acc16 = AddF16(acc16, p);
    acc32 += p;
  }
  EXPECT_EQ(F16ToF32(acc16), 2048.0f);
  EXPECT_EQ(acc32, 4096.0f);
}

TEST(Accumulation, BF16AccumulatorStallsAt256) {
  // bf16 keeps 8 significant bits: 256 + 1 is a tie that rounds back to 256.
  uint16_t acc = 0;
  for (int i = 0; i < 1000; ++i) acc = AddBF16(acc, 1.0f);
  EXPECT_EQ(BF16ToF32(acc), 256.0f);
}

TEST(Accumulation, F16AccumulatorOverflowsPast65504) {
  // Two products of 200*200 = 40000 (each fits in f16): their sum 80000 > 65504 is inf
  // in f16, exact in f32.
  const float a = F16ToF32(F32ToF16(200.0f));
  const float p = a * a;
  ASSERT_EQ(F16ToF32(F32ToF16(p)), 40000.0f);
  const uint16_t acc16 = AddF16(AddF16(0, p), p);
  EXPECT_TRUE(std::isinf(F16ToF32(acc16)));
  EXPECT_EQ(p + p, 80000.0f);
}

TEST(Accumulation, F16DotProductErrorF16VersusF32Accumulator) {
  // Dot product of K = 4096 f16 values in [-1, 1] against a double reference.
  // f32 accumulation stays inside the classical bound K * u * sum|a||b| (Higham,
  // Accuracy and Stability, eq. 3.5, u = f32 unit roundoff, products exact in f32);
  // f16 accumulation exceeds even that bound scaled by 2^13 (= u_f16 / u_f32).
  constexpr int K = 4096;
  uint64_t state = 7;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int32_t>(state >> 32)) * 0x1p-31f;
  };
  double ref = 0, abs_sum = 0;
  float acc32 = 0.0f;
  uint16_t acc16 = 0;
  for (int i = 0; i < K; ++i) {
    const float a = F16ToF32(F32ToF16(next())), b = F16ToF32(F32ToF16(next()));
    const float p = a * b;  // exact: 11 + 11 significant bits fit in f32's 24
    ref += static_cast<double>(a) * b;
    abs_sum += std::fabs(static_cast<double>(a) * b);
    acc32 += p;
    acc16 = AddF16(acc16, p);
  }
  const double kTolF32 = K * kF32Eps * abs_sum;  // the bound: K * u * sum|a*b|
  EXPECT_LE(std::fabs(acc32 - ref), kTolF32);
  // The f16 accumulator's error is orders of magnitude above f32's bound (measured
  // ratio here is ~10^3; 100 keeps the test robust while showing the loss).
  EXPECT_GT(std::fabs(F16ToF32(acc16) - ref), 100 * std::fabs(acc32 - ref) + kTolF32 / K);
}

TEST(Accumulation, Int8ProductsOverflowInt16) {
  // 127 * 127 = 16129; three of them are 48387 > 32767: an int16 accumulator wraps
  // (C++20 conversion to int16 is modular), int32 holds it exactly.
  int16_t acc16 = 0;
  int32_t acc32 = 0;
  for (int i = 0; i < 3; ++i) {
    const int p = int8_t{127} * int8_t{127};
    acc16 = static_cast<int16_t>(acc16 + p);
    acc32 += p;
  }
  EXPECT_EQ(acc32, 48387);
  EXPECT_NE(acc16, 48387);
  EXPECT_EQ(acc16, 48387 - 65536);
}

TEST(Accumulation, Int32HoldsInt8DotsUpTo133144Terms) {
  // Worst case for symmetric int8 in [-127, 127]: every product 127^2 = 16129.
  // floor((2^31 - 1) / 16129) = 133144 terms fit; one more does not. With -128 allowed,
  // (-128)^2 = 16384 and the limit is 131071 terms.
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  constexpr int64_t kTermsSym = kMax / (127 * 127);
  constexpr int64_t kTermsFull = kMax / (128 * 128);
  static_assert(kTermsSym == 133144 && kTermsFull == 131071);
  int32_t acc32 = 0;
  int64_t acc64 = 0;
  for (int64_t i = 0; i < kTermsSym; ++i) {
    acc32 += int8_t{127} * int8_t{127};
    acc64 += 127 * 127;
  }
  EXPECT_EQ(acc32, acc64);
  EXPECT_GT(acc64 + 127 * 127, kMax);  // one more term would overflow int32
  int32_t acc_full = 0;
  for (int64_t i = 0; i < kTermsFull; ++i) acc_full += int8_t{-128} * int8_t{-128};
  EXPECT_EQ(acc_full, kTermsFull * 16384);
  EXPECT_GT(int64_t{acc_full} + 16384, kMax);
}

}  // namespace
}  // namespace nibble
