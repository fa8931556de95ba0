// FindNonFinite against a plain Ref (decode to f32/f64, std::isfinite): exhaustive over
// every bit pattern of the 8- and 16-bit formats, specials and random patterns for f32
// and f64, and the first index found when the scan is split over threads.
#include "kernels/nonfinite.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/float_convert.h"
#include "hwy/tests/hwy_gtest.h"

namespace nibble::kernels {
namespace {

template <class U>
int64_t Ref(DType dt, const std::vector<U>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    double x = 0;
    if constexpr (sizeof(U) == 1) {
      x = dt == DType::kF8E4M3FN ? F8E4M3ToF32(v[i]) : F8E5M2ToF32(v[i]);
    } else if constexpr (sizeof(U) == 2) {
      x = dt == DType::kF16 ? F16ToF32(v[i]) : BF16ToF32(v[i]);
    } else if constexpr (sizeof(U) == 4) {
      x = F32FromBits(v[i]);
    } else {
      double d;
      std::memcpy(&d, &v[i], 8);
      x = d;
    }
    if (!std::isfinite(x)) return static_cast<int64_t>(i);
  }
  return -1;
}

TEST(FindNonFinite, EveryPatternOfTheSmallFormatsMatchesRef) {
  for (DType dt : {DType::kF8E4M3FN, DType::kF8E5M2}) {
    for (unsigned b = 0; b < 256; ++b) {
      const std::vector<uint8_t> v = {static_cast<uint8_t>(b)};
      EXPECT_EQ(FindNonFinite(1, dt, v.data(), 1), Ref(dt, v)) << DTypeName(dt) << " 0x" << std::hex << b;
    }
  }
  for (DType dt : {DType::kF16, DType::kBF16}) {
    for (unsigned b = 0; b < 65536; ++b) {
      const std::vector<uint16_t> v = {static_cast<uint16_t>(b)};
      ASSERT_EQ(FindNonFinite(1, dt, v.data(), 1), Ref(dt, v)) << DTypeName(dt) << " 0x" << std::hex << b;
    }
  }
}

TEST(FindNonFinite, F32AndF64SpecialsAndRandomPatterns) {
  std::mt19937_64 rng(5);
  std::vector<uint32_t> f32 = {F32Bits(0.0f), F32Bits(-0.0f), F32Bits(std::numeric_limits<float>::max()),
                               F32Bits(std::numeric_limits<float>::denorm_min()), F32Bits(INFINITY),
                               F32Bits(-INFINITY), F32Bits(std::nanf("")), 0x7F800001u, 0xFFFFFFFFu};
  for (int i = 0; i < 200000; ++i) f32.push_back(static_cast<uint32_t>(rng()));
  for (uint32_t u : f32) {
    const std::vector<uint32_t> v = {u};
    ASSERT_EQ(FindNonFinite(1, DType::kF32, v.data(), 1), Ref(DType::kF32, v)) << std::hex << u;
  }
  for (int i = 0; i < 200000; ++i) {
    const std::vector<uint64_t> v = {rng()};
    ASSERT_EQ(FindNonFinite(1, DType::kF64, v.data(), 1), Ref(DType::kF64, v)) << std::hex << v[0];
  }
}

// Long arrays (tails of every length mod 16, past the 4-block threshold for threads):
// the first bad index, whichever thread's range holds it, and -1 when all are finite.
TEST(FindNonFinite, FirstIndexOverThreadsAndTails) {
  std::mt19937_64 rng(9);
  for (const int64_t n : {int64_t{1}, int64_t{17}, int64_t{65535}, int64_t{4 * 16384 + 13}, int64_t{3 * 65536 + 7}}) {
    std::vector<float> v(static_cast<size_t>(n));
    std::normal_distribution<float> g(0, 1);
    for (float& x : v) x = g(rng);
    for (int threads : {0, 1, 2, 3, 7}) {
      EXPECT_EQ(FindNonFinite(threads, DType::kF32, v.data(), n), -1) << n;
    }
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<float> w = v;
      const int64_t a = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      const int64_t b = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      w[static_cast<size_t>(a)] = trial % 2 ? INFINITY : std::nanf("");
      w[static_cast<size_t>(b)] = -INFINITY;
      for (int threads : {1, 2, 3, 7})
        EXPECT_EQ(FindNonFinite(threads, DType::kF32, w.data(), n), std::min(a, b)) << n << " threads " << threads;
    }
  }
  // Unaligned bf16 data (a tensor at an odd offset in a file).
  std::vector<uint8_t> bytes(2 * 100001 + 1);
  for (size_t i = 1; i + 1 < bytes.size(); i += 2) {
    const uint16_t one = F32ToBF16(1.0f);
    std::memcpy(&bytes[i], &one, 2);
  }
  const uint16_t inf = 0x7F80;
  std::memcpy(&bytes[1 + 2 * 77777], &inf, 2);
  EXPECT_EQ(FindNonFinite(3, DType::kBF16, bytes.data() + 1, 100000), 77777);
  // Integer and quantized dtypes are not scanned.
  EXPECT_EQ(FindNonFinite(1, DType::kI32, bytes.data(), 10), -1);
}

// The vector path on every compiled target: for each format, long arrays (4 vectors per
// step, blocks of 16 Ki, tails) of finite values with one non-finite pattern planted,
// every non-finite pattern of the 8- and 16-bit formats in turn (sampled for f32).
class NonFiniteTargetTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(NonFiniteTargetTest);

template <class U>
void PlantEach(DType dt, const std::vector<U>& bad_patterns, U finite) {
  std::mt19937_64 rng(static_cast<uint64_t>(dt) + 1);
  const int64_t n = 4 * 16384 + 77;  // past the threshold where the scan splits over threads
  std::vector<U> v(static_cast<size_t>(n), finite);
  ASSERT_EQ(FindNonFinite(1, dt, v.data(), n), -1) << DTypeName(dt);
  for (size_t k = 0; k < bad_patterns.size(); ++k) {
    const int64_t at = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
    v[static_cast<size_t>(at)] = bad_patterns[k];
    ASSERT_EQ(FindNonFinite(1, dt, v.data(), n), at) << DTypeName(dt) << " pattern " << k;
    ASSERT_EQ(FindNonFinite(2, dt, v.data(), n), at) << DTypeName(dt) << " pattern " << k;
    v[static_cast<size_t>(at)] = finite;
  }
}

TEST_P(NonFiniteTargetTest, EveryFormatFindsEveryPlantedPattern) {
  for (DType dt : {DType::kF16, DType::kBF16}) {
    std::vector<uint16_t> bad;
    for (unsigned b = 0; b < 65536; ++b) {
      const std::vector<uint16_t> one = {static_cast<uint16_t>(b)};
      if (Ref(dt, one) == 0) bad.push_back(static_cast<uint16_t>(b));
    }
    ASSERT_EQ(bad.size(), dt == DType::kF16 ? 2048u : 256u);  // both signs x every mantissa
    // Every 7th pattern keeps the run short; they cover sign, all-ones exponent, mantissas.
    std::vector<uint16_t> some;
    for (size_t i = 0; i < bad.size(); i += 7) some.push_back(bad[i]);
    some.push_back(bad.back());
    PlantEach<uint16_t>(dt, some, dt == DType::kF16 ? 0x3C00 : 0x3F80);
  }
  for (DType dt : {DType::kF8E4M3FN, DType::kF8E5M2}) {
    std::vector<uint8_t> bad;
    for (unsigned b = 0; b < 256; ++b) {
      const std::vector<uint8_t> one = {static_cast<uint8_t>(b)};
      if (Ref(dt, one) == 0) bad.push_back(static_cast<uint8_t>(b));
    }
    PlantEach<uint8_t>(dt, bad, 0x38);
  }
  PlantEach<uint32_t>(DType::kF32, {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0xFFFFFFFFu},
                      F32Bits(1.0f));
  PlantEach<uint64_t>(DType::kF64, {0x7FF0000000000000ull, 0xFFF8000000000001ull}, 0x3FF0000000000000ull);
}

}  // namespace
}  // namespace nibble::kernels
