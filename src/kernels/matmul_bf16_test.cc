// Checks MatMulBf16 (Highway variant on every compiled target, and the vdpbf16ps variant
// where the CPU has it; GEMV, tiled, threaded) against MatMulBf16Ref (double accumulation
// of the exact products bf16(x)·w), plus hand-computed rounding cases and the CPUID probe.
#include "kernels/matmul_bf16.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/float_convert.h"
#include "hwy/tests/hwy_gtest.h"
#include "util/random_vec.h"

namespace nibble::kernels {
namespace {

// C9 dot-product bound |y - y_ref| <= c·K·ε·Σ|bf16(x)·w|: every product is exact in f32
// (8 + 8 significant bits), so the only error is f32 summation of K terms, at most
// K·u·Σ|p| (u = 2^-24) in any order (sequential, blocked or vdpbf16ps's pairwise steps),
// plus u·|y| from the Ref's final rounding; ε = FLT_EPSILON = 2u, so c = 1 covers both.
constexpr double kTolDotFactor = 1.0;

using test::RandomVec;
using test::RandomBf16;

void CheckShape(size_t M, size_t N, size_t K, int threads, MatMulBf16Variant variant) {
  const std::vector<float> x = RandomVec(M * K, 1 + static_cast<uint32_t>(M * 7 + K));
  const std::vector<uint16_t> w = RandomBf16(N * K, 2 + static_cast<uint32_t>(N * 13 + K));
  std::vector<float> y(M * N, NAN), ref(M * N);
  MatMulBf16(threads, x.data(), w.data(), y.data(), M, N, K, variant);
  MatMulBf16Ref(x.data(), w.data(), ref.data(), M, N, K);
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double abs_sum = 0.0;
      for (size_t k = 0; k < K; ++k)
        abs_sum += std::fabs(static_cast<double>(BF16ToF32(F32ToBF16(x[m * K + k]))) * BF16ToF32(w[n * K + k]));
      const double tol = kTolDotFactor * static_cast<double>(K) * FLT_EPSILON * abs_sum;
      ASSERT_LE(std::fabs(static_cast<double>(y[m * N + n]) - ref[m * N + n]), tol)
          << "M=" << M << " N=" << N << " K=" << K << " threads=" << threads << " variant=" << static_cast<int>(variant)
          << " at (" << m << ", " << n << ")";
    }
  }
}

void CheckAllShapes(MatMulBf16Variant variant) {
  for (size_t K : {1, 3, 8, 16, 17, 31, 32, 33, 64, 172, 257})
    for (size_t N : {1, 4, 5, 33, 64, 130}) CheckShape(1, N, K, 1, variant);
  for (size_t M : {2, 3, 4, 5, 7, 33, 40})
    for (size_t K : {5, 16, 64, 100})
      for (size_t N : {1, 6, 37}) CheckShape(M, N, K, 1, variant);
  // Large enough for the OpenMP split (>= 2^16 multiply-adds, N >= 32), with an N that
  // leaves a partial last block.
  CheckShape(1, 1000, 256, 2, variant);
  CheckShape(9, 301, 96, 2, variant);
}

// Activations that bf16 cannot hold must be rounded (RNE) before the product: with K = 1
// and w = 1 the result is exactly bf16(x), whatever the variant's summation order.
void CheckActivationRounding(MatMulBf16Variant variant) {
  // bf16 keeps 8 significant bits: the step is 2^-7 in [1, 2) and 2^-6 in [2, 4).
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7 (to even: 1); 1 + 3·2^-8 is a tie between
  // 1 + 2^-7 (odd) and 1 + 2^-6 (even: up); -(2 + 2^-8) is below the half-step 2^-7 and
  // goes to -2; 3.0 is exact.
  const std::vector<float> x = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(2.0f + 0x1p-8f), 3.0f};
  const std::vector<float> expect = {1.0f, 1.0f + 0x1p-6f, -2.0f, 3.0f};
  const std::vector<uint16_t> w = {F32ToBF16(1.0f)};
  std::vector<float> y(x.size(), NAN);
  MatMulBf16(1, x.data(), w.data(), y.data(), x.size(), 1, 1, variant);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], expect[i]) << "row " << i;
}

class MatMulBf16Test : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(MatMulBf16Test);

TEST_P(MatMulBf16Test, HighwayMatchesRef) { CheckAllShapes(MatMulBf16Variant::kHighway); }
TEST_P(MatMulBf16Test, HighwayRoundsActivations) { CheckActivationRounding(MatMulBf16Variant::kHighway); }

TEST(MatMulBf16Avx512Bf16Test, MatchesRef) {
  if (!HasAvx512Bf16()) GTEST_SKIP() << "CPU or OS lacks AVX512-BF16";
  CheckAllShapes(MatMulBf16Variant::kAvx512Bf16);
}

TEST(MatMulBf16Avx512Bf16Test, RoundsActivations) {
  if (!HasAvx512Bf16()) GTEST_SKIP() << "CPU or OS lacks AVX512-BF16";
  CheckActivationRounding(MatMulBf16Variant::kAvx512Bf16);
}

TEST(MatMulBf16AutoTest, MatchesRef) { CheckShape(3, 37, 100, 2, MatMulBf16Variant::kAuto); }

// The CPUID probe agrees with the kernel's view in /proc/cpuinfo (Linux only): the flag
// "avx512_bf16" is listed iff the CPU has it and the kernel enabled AVX-512 state.
TEST(MatMulBf16ProbeTest, AgreesWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  bool listed = false;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    listed = (line + " ").find(" avx512_bf16 ") != std::string::npos;
    break;
  }
  // The probe is capped (NIBBLE_CPU=avx2|scalar hides AVX512_BF16 the CPU has), so it
  // must equal what the CPU lists exactly when the cap allows AVX-512.
  const bool allowed = CpuCap() >= CpuLevel::kAvx512;
  EXPECT_EQ(HasAvx512Bf16(), listed && allowed) << "cap " << static_cast<int>(CpuCap());
}

}  // namespace
}  // namespace nibble::kernels
