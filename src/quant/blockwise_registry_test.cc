// Generic tests over every registered blockwise format (conventions C8): the parallel
// QuantizeMatrix/DequantizeMatrix equal the scalar Ref bit for bit, the round trip stays
// inside the analytic bound, the mean error sits in its measured band, QGemv and QLinear
// match an f64 product of the dequantized weights, odd sizes work and bad sizes throw.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/float_convert.h"
#include "hwy/targets.h"
#include "quant/formats/fp4/fp4.h"
#include "quant/formats/nf4/nf4.h"
#include "nibble/error.h"
#include "quant/qgemv.h"
#include "quant/qlinear.h"
#include "quant/qtensor.h"
#include "quant/registry.h"
#include "util/cpu_cap.h"
#include "util/random_vec.h"
#include "util/target_pin.h"

namespace nibble::quant {
namespace {

std::vector<int64_t> Blocksizes(const BlockwiseTraits& f) {
  if (f.code_bits == 4) return {32, 64, 256};
  return {64, 0, -1};  // per block, per row, per tensor
}

TEST(BlockwiseRegistry, EveryMethodHasANameAndFormat) {
  EXPECT_EQ(AllBlockwiseFormats().size(), static_cast<size_t>(kNumQuantMethods - 1));
  for (int i = 0; i < kNumQuantMethods; ++i) {
    const auto m = static_cast<QuantMethod>(i);
    EXPECT_EQ(ParseMethod(MethodName(m)), m);
    if (m != QuantMethod::kLlmInt8) {
      ASSERT_NE(FindBlockwiseFormat(m), nullptr);
      EXPECT_EQ(FindBlockwiseFormat(m)->name, MethodName(m));
    }
  }
  EXPECT_FALSE(ParseMethod("q4_0").has_value());
}

TEST(BlockwiseRegistry, ParallelEqualsRefAndRoundTripBound) {
  Allocator alloc;
  for (const BlockwiseTraits* f : AllBlockwiseFormats()) {
    for (int64_t B : Blocksizes(*f)) {
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 64}, {17, 100}, {32, 1000}}) {
        const int64_t n = rows * cols;
        const std::vector<float> x = test::NormalVec(static_cast<size_t>(n), static_cast<uint32_t>(n + B), 0.02f);
        const QTensor q = QuantizeMatrix(alloc, x.data(), Shape{rows, cols}, DType::kF32,
                                         {.method = f->method, .blocksize = B}, 2);
        ValidateQTensor(q, "test");
        const int64_t eb = B > 0 ? B : (B == 0 ? cols : n);
        ASSERT_EQ(q.blocksize, eb);
        const int64_t nb = NumBlocks(n, eb);
        std::vector<uint8_t> codes(static_cast<size_t>(CodeBytes(f->code_bits, n)));
        std::vector<float> scales(static_cast<size_t>(nb)), zeros(static_cast<size_t>(nb));
        f->quantize_ref(x.data(), n, eb, codes.data(), scales.data(), f->has_zero_point ? zeros.data() : nullptr);
        ASSERT_EQ(std::vector<uint8_t>(q.codes.begin(), q.codes.end()), codes) << f->name << " B=" << B;
        ASSERT_EQ(std::vector<float>(q.scales.begin(), q.scales.end()), scales) << f->name;
        std::vector<float> ref(static_cast<size_t>(n)), out(static_cast<size_t>(n));
        f->dequantize_ref(codes.data(), scales.data(), zeros.data(), n, eb, ref.data());
        DequantizeMatrix(q, out.data(), 2);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(F32Bits(out[i]), F32Bits(ref[i])) << f->name << " i=" << i;
          // Analytic bound: half the widest normalised gap times the block's absmax,
          // plus 1e-6 relative for the two roundings of the scaled value.
          const int64_t b = i / eb;
          float a = 0;
          for (int64_t j = b * eb; j < std::min(n, (b + 1) * eb); ++j) a = std::max(a, std::fabs(x[j]));
          // plus 4 ulp of the absmax for the roundings of 1/absmax, the scaled value and
          // the stored step (|code| * ulp(step) for the integer formats).
          ASSERT_LE(std::fabs(x[i] - out[i]), a * f->max_gap / 2 + 4 * a * 0x1p-23f)
              << f->name << " B=" << B << " i=" << i;
        }
      }
    }
  }
}

// Mean |x - x̂| on N(0,1) at blocksize 64 over 2^20 values, band = measured ± 2 %
// (gemma's IsInside: a change either way must be explained). NF4's published figure
// (bitsandbytes tests/test_functional.py, blocksize 64) is 0.0728.
TEST(BlockwiseRegistry, MeanErrorBandsOnStandardNormal) {
  const std::vector<float> x = test::NormalVec(size_t{1} << 20, 1234, 1.0f);
  struct Band {
    QuantMethod m;
    double lo, hi;
  };
  const Band bands[] = {{QuantMethod::kNf4, 0.0713, 0.0743},
                        {QuantMethod::kFp4, 0.0947, 0.0985},
                        {QuantMethod::kInt4, 0.0895, 0.0931},
                        {QuantMethod::kInt8Absmax, 0.00493, 0.00513},
                        {QuantMethod::kInt8ZeroPoint, 0.00452, 0.00471}};
  Allocator alloc;
  for (const Band& band : bands) {
    const QTensor q = QuantizeMatrix(alloc, x.data(), Shape{1024, 1024}, DType::kF32,
                                     {.method = band.m, .blocksize = 64}, 2);
    std::vector<float> out(x.size());
    DequantizeMatrix(q, out.data(), 2);
    double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) sum += std::fabs(static_cast<double>(x[i]) - out[i]);
    const double mean = sum / static_cast<double>(x.size());
    std::printf("%s mean |err| %.6f\n", MethodName(band.m).data(), mean);
    EXPECT_GE(mean, band.lo) << MethodName(band.m);
    EXPECT_LE(mean, band.hi) << MethodName(band.m);
  }
}

// QGemv / QLinear against an f64 product of the dequantized weights (rounded to the
// compute dtype, with x rounded too). Bound: 4·K·eps_f32·Σ|w||x| (f32 accumulation in
// any order, plus the per-block scale applied after the sum in the kF32 path).
TEST(BlockwiseRegistry, GemvMatchesF64OfDequantized) {
  Allocator alloc;
  const ComputeDtype computes[] = {ComputeDtype::kF32, ComputeDtype::kBf16, ComputeDtype::kF16};
  for (int mi = 0; mi < kNumQuantMethods; ++mi) {
    const auto m = static_cast<QuantMethod>(mi);
    for (auto [N, K, B] : {std::tuple<int64_t, int64_t, int64_t>{33, 256, 64}, {8, 100, 64}, {16, 512, 128}}) {
      if (m == QuantMethod::kLlmInt8) continue;  // its own reference (TV6 and LlmInt8 tests)
      const BlockwiseTraits* f = FindBlockwiseFormat(m);
      if (f->code_bits == 4 && B > K) continue;
      for (ComputeDtype c : computes) {
        const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 11, 0.02f);
        const QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                                         {.method = m, .blocksize = B, .double_quant = f->code_bits == 4, .compute = c},
                                         2);
        std::vector<float> wd(w.size());
        DequantizeMatrix(q, wd.data(), 1);
        auto round = [&](float v) {
          return c == ComputeDtype::kBf16 ? BF16ToF32(F32ToBF16(v))
                                          : (c == ComputeDtype::kF16 ? F16ToF32(F32ToF16(v)) : v);
        };
        for (int64_t M : {int64_t{1}, int64_t{3}, int64_t{9}}) {
          const std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 5, 1.0f);
          std::vector<float> y(static_cast<size_t>(M * N)), yl(y.size()), yr(y.size());
          QGemv(2, x.data(), q, y.data(), M);
          QLinear(2, alloc, x.data(), q, yl.data(), M);
          QGemvRef(x.data(), q, yr.data(), M);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t n = 0; n < N; ++n) {
              double exact = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double p = static_cast<double>(round(x[i * K + k])) * round(wd[n * K + k]);
                exact += p;
                mag += std::fabs(p);
              }
              const double tol = 4.0 * static_cast<double>(K) * 1.2e-7 * mag + 1e-30;
              ASSERT_NEAR(y[i * N + n], exact, tol) << MethodName(m) << " c=" << int(c) << " M=" << M;
              ASSERT_NEAR(yr[i * N + n], exact, tol) << MethodName(m);
              // QLinear's GEMM path rounds activations to bf16 for bf16 compute, as here.
              ASSERT_NEAR(yl[i * N + n], exact, tol) << MethodName(m) << " QLinear M=" << M;
            }
        }
      }
    }
  }
}

using test::TargetPin;

// Every compiled Highway target (C7) against the scalar Ref: quantize bytes and absmax,
// dequantized bits, and the GEMV within the f64 bound. Inputs hit every decision
// threshold exactly and one ulp either side (block absmax 1, so s = x), hold an
// all-zero block, -0.0, tiny values and a partial last block.
TEST(BlockwiseRegistry, SimdEqualsRefOnEveryTarget) {
  std::vector<float> x;
  auto block_of = [&](std::vector<float> v) {
    v.resize(64, 0.25f);
    v[63] = 1.0f;  // absmax 1: the scaled value is x itself
    x.insert(x.end(), v.begin(), v.end());
  };
  std::vector<float> edge;
  for (int k = 0; k < 15; ++k) {
    const float t = std::bit_cast<float>(nf4::kThresholdBits[k]);
    for (float v : {t, std::nextafter(t, -2.0f), std::nextafter(t, 2.0f)}) edge.push_back(v);
  }
  for (int k = 0; k < 7; ++k) {
    const float t = std::bit_cast<float>(fp4::kThresholdBits[k]);
    for (float v : {t, -t, std::nextafter(t, 0.0f), std::nextafter(t, 2.0f), -std::nextafter(t, 2.0f)})
      edge.push_back(v);
  }
  edge.insert(edge.end(), {-0.0f, 0.0f, 1e-30f, -1e-30f, -1.0f});
  for (size_t i = 0; i < edge.size(); i += 60) block_of({edge.begin() + i, edge.begin() + std::min(edge.size(), i + 60)});
  x.insert(x.end(), 64, 0.0f);  // all-zero block
  const std::vector<float> r = test::NormalVec(64 * 40 + 37, 77, 0.02f);
  x.insert(x.end(), r.begin(), r.end());  // ends in a partial block
  const auto n = static_cast<int64_t>(x.size());
  TargetPin pin;
  for (const BlockwiseTraits* f : AllBlockwiseFormats()) {
    SCOPED_TRACE(std::string(f->name));
    const int64_t B = 64, nb = NumBlocks(n, B);
    std::vector<uint8_t> ref_codes(static_cast<size_t>(CodeBytes(f->code_bits, n)));
    std::vector<float> ref_scales(static_cast<size_t>(nb)), zeros(static_cast<size_t>(nb)), ref_out(x.size());
    f->quantize_ref(x.data(), n, B, ref_codes.data(), ref_scales.data(), zeros.data());
    f->dequantize_ref(ref_codes.data(), ref_scales.data(), zeros.data(), n, B, ref_out.data());
    for (int64_t target : test::HighwayTargetsToTest()) {
      SCOPED_TRACE(hwy::TargetName(target));
      pin.Pin(target);
      Allocator alloc;
      const QTensor q = QuantizeMatrix(alloc, x.data(), Shape{1, n}, DType::kF32, {.method = f->method, .blocksize = B}, 2);
      ASSERT_EQ(std::vector<uint8_t>(q.codes.begin(), q.codes.end()), ref_codes);
      ASSERT_EQ(std::vector<float>(q.scales.begin(), q.scales.end()), ref_scales);
      std::vector<float> out(x.size());
      DequantizeMatrix(q, out.data(), 2);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(F32Bits(out[i]), F32Bits(ref_out[i])) << i;
    }
  }
  // The GEMV on every target: a [48, 256] NF4 / int8 weight, f32 and bf16 compute.
  const std::vector<float> w = test::NormalVec(48 * 256, 3, 0.02f), xv = test::NormalVec(2 * 256, 4, 1.0f);
  for (QuantMethod m : {QuantMethod::kNf4, QuantMethod::kFp4, QuantMethod::kInt8Absmax}) {
    for (ComputeDtype c : {ComputeDtype::kF32, ComputeDtype::kBf16}) {
      Allocator alloc;
      const QTensor q = QuantizeMatrix(alloc, w.data(), Shape{48, 256}, DType::kF32,
                                       {.method = m, .blocksize = 64, .double_quant = m == QuantMethod::kNf4, .compute = c}, 1);
      std::vector<float> ref(2 * 48), got(2 * 48);
      QGemvRef(xv.data(), q, ref.data(), 2);
      for (int64_t target : test::HighwayTargetsToTest()) {
        SCOPED_TRACE(hwy::TargetName(target));
        pin.Pin(target);
        QGemv(2, xv.data(), q, got.data(), 2);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-4) << MethodName(m) << " " << i;
      }
    }
  }
}

// QLinearPolicy::compute overrides the compute dtype a weight records: an f32-compute
// weight called under a bf16 (or f16) policy gives bit for bit what the same codes give
// when they record that dtype, on every path (GEMV, the GEMM form, the oracle), and an
// unset override keeps the recorded one.
TEST(BlockwiseRegistry, PolicyComputeOverridesTheRecordedDtype) {
  const int64_t N = 40, K = 256, M = 9;
  const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 11, 0.02f);
  const std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 12, 1.0f);
  for (QuantMethod m : {QuantMethod::kNf4, QuantMethod::kInt8Absmax}) {
    Allocator alloc;
    const QTensor f32 = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32, {.method = m, .blocksize = 64}, 1);
    for (ComputeDtype c : {ComputeDtype::kBf16, ComputeDtype::kF16}) {
      const QTensor recorded =
          QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32, {.method = m, .blocksize = 64, .compute = c}, 1);
      ASSERT_TRUE(std::equal(f32.codes.begin(), f32.codes.end(), recorded.codes.begin(), recorded.codes.end()));
      const QLinearPolicy override{.compute = c};
      for (int64_t rows : {int64_t{1}, M}) {
        std::vector<float> a(static_cast<size_t>(rows * N)), b(a.size());
        QGemv(2, x.data(), f32, a.data(), rows, override);
        QGemv(2, x.data(), recorded, b.data(), rows);
        EXPECT_EQ(a, b) << MethodName(m) << " QGemv rows " << rows;
        QLinear(2, alloc, x.data(), f32, a.data(), rows, override);
        QLinear(2, alloc, x.data(), recorded, b.data(), rows);
        EXPECT_EQ(a, b) << MethodName(m) << " QLinear rows " << rows;
        QGemvRef(x.data(), f32, a.data(), rows, override);
        QGemvRef(x.data(), recorded, b.data(), rows);
        EXPECT_EQ(a, b) << MethodName(m) << " QGemvRef rows " << rows;
        // No override: the recorded dtype, so the f32 weight differs from the rounded one.
        QGemvRef(x.data(), f32, a.data(), rows);
        EXPECT_NE(a, b) << MethodName(m) << " rows " << rows;
      }
    }
  }
}

// Checkpoints may store any blocksize, odd ones too (the loader accepts B in [1, n]):
// DequantizeMatrix splits its work into chunks of whole blocks that must start on a whole
// code byte. Odd B = 3 and 5 over more than one 64K-element chunk, against the
// element-by-element DequantizeRange.
TEST(BlockwiseRegistry, OddBlocksizeChunksStartOnWholeBytes) {
  for (int64_t B : {int64_t{3}, int64_t{5}}) {
    const int64_t N = 256, K = 384, n = N * K;
    std::mt19937 rng(static_cast<uint32_t>(B));
    std::vector<uint8_t> codes(static_cast<size_t>(n / 2));
    for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
    std::vector<float> scales(static_cast<size_t>((n + B - 1) / B));
    for (float& s : scales) s = 0.5f + static_cast<float>(rng() % 100) / 100.0f;
    QTensor q;
    q.method = QuantMethod::kInt4;
    q.format = FindBlockwiseFormat(QuantMethod::kInt4);
    q.shape = Shape{N, K};
    q.blocksize = B;
    q.codes = codes;
    q.scales = scales;
    std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    DequantizeMatrix(q, got.data(), 2);
    DequantizeRange(q, 0, n, want.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(F32Bits(got[i]), F32Bits(want[i])) << "B=" << B << " i=" << i;
  }
}

TEST(BlockwiseRegistry, BadBlocksizesThrow) {
  Allocator alloc;
  const std::vector<float> x(256, 1.0f);
  for (int64_t B : {16, 48, 100, 8192})
    EXPECT_THROW(QuantizeMatrix(alloc, x.data(), Shape{4, 64}, DType::kF32, {.method = QuantMethod::kNf4, .blocksize = B}, 1),
                 ShapeError)
        << B;
  EXPECT_THROW(QuantizeMatrix(alloc, x.data(), Shape{4, 64}, DType::kF32,
                              {.method = QuantMethod::kInt8Absmax, .blocksize = 64, .double_quant = true}, 1),
               ConfigError);
}

// A prompt-sized product: several row tiles (K = 4096: 128 rows per tile, N = 300) and
// tokens with outliers, on every path the CPU caps reach (VNNI, AVX2, Highway at each
// target): bit-identical to the Ref.
TEST(LlmInt8, BlockedPromptMatMulEqualsRefOnEveryPath) {
  Allocator alloc;
  const int64_t N = 300, K = 4096, M = 6;
  const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 12, 0.05f);
  const QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF16,
                                   {.method = QuantMethod::kLlmInt8, .threshold = 6.0f}, 2);
  std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 13, 1.0f);
  x[5] = 8.0f;
  x[3 * K + 2000] = -6.5f;
  std::vector<float> ref(static_cast<size_t>(M * N));
  QGemvRef(x.data(), q, ref.data(), M);
  for (CpuLevel cap : test::CapsToTest()) {
    test::CpuCapScope scope(cap);
    std::vector<float> y(ref.size());
    QLinear(2, alloc, x.data(), q, y.data(), M);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(F32Bits(y[i]), F32Bits(ref[i])) << test::CapTrace(cap) << " " << i;
  }
}

// Quantizing from bf16 / f16 storage row by row gives the codes and SCB of quantizing the
// same values as f32 (the loader's --int8-classifier path, which makes no f32 copy).
TEST(LlmInt8, QuantizeFromStoredDtypesEqualsF32) {
  Allocator alloc;
  const int64_t N = 37, K = 200;
  const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 61, 0.05f);
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    std::vector<uint16_t> half(w.size());
    std::vector<float> as_f32(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      half[i] = dt == DType::kBF16 ? F32ToBF16(w[i]) : F32ToF16(w[i]);
      as_f32[i] = dt == DType::kF32 ? w[i] : (dt == DType::kBF16 ? BF16ToF32(half[i]) : F16ToF32(half[i]));
    }
    const void* stored = dt == DType::kF32 ? static_cast<const void*>(w.data()) : half.data();
    const QTensor a = QuantizeLlmInt8Stored(alloc, stored, dt, Shape{N, K}, dt, 0.0f, 2);
    const QTensor b = QuantizeMatrix(alloc, as_f32.data(), Shape{N, K}, dt,
                                     {.method = QuantMethod::kLlmInt8, .threshold = 0.0f}, 1);
    EXPECT_TRUE(std::equal(a.codes.begin(), a.codes.end(), b.codes.begin(), b.codes.end())) << int(dt);
    EXPECT_TRUE(std::equal(a.scales.begin(), a.scales.end(), b.scales.begin(), b.scales.end())) << int(dt);
    EXPECT_EQ(a.threshold, 0.0f);
    EXPECT_EQ(a.blocksize, K);
  }
}

TEST(LlmInt8, GemvWithOutliersMatchesRefAndF64) {
  Allocator alloc;
  const int64_t N = 40, K = 300;
  std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 3, 0.05f);
  const QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF16,
                                   {.method = QuantMethod::kLlmInt8, .threshold = 6.0f}, 2);
  std::vector<float> wd(w.size());
  DequantizeMatrix(q, wd.data(), 1);
  for (int64_t M : {1, 5}) {
    std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 9, 1.0f);
    x[7] = 9.5f;               // an outlier column (row 0)
    x[(M - 1) * K + 100] = -7.0f;  // and another in the last row
    std::vector<float> y(static_cast<size_t>(M * N)), yr(y.size());
    QGemvRef(x.data(), q, yr.data(), M);
    // Every path the caps reach; K = 300 leaves a tail after the 32- and 64-byte loops.
    for (CpuLevel cap : test::CapsToTest()) {
      test::CpuCapScope scope(cap);
      QGemv(2, x.data(), q, y.data(), M);
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(F32Bits(y[i]), F32Bits(yr[i])) << test::CapTrace(cap) << " " << i;
    }
    // Against the f64 product with the dequantized weights: int8 activations lose up to
    // half a step (SCA/127/2) per element, so the bound is Σ|w|·SCA/254 + f32 rounding.
    for (int64_t m = 0; m < M; ++m) {
      float sca = 0;
      for (int64_t k = 0; k < K; ++k)
        if (std::fabs(x[m * K + k]) < 6.0f) sca = std::max(sca, std::fabs(x[m * K + k]));
      for (int64_t n = 0; n < N; ++n) {
        double exact = 0, wabs = 0;
        for (int64_t k = 0; k < K; ++k) {
          exact += static_cast<double>(x[m * K + k]) * wd[n * K + k];
          wabs += std::fabs(wd[n * K + k]);
        }
        ASSERT_NEAR(y[m * N + n], exact, wabs * sca / 254.0 * 1.01 + 1e-4) << m << "," << n;
      }
    }
  }
}

}  // namespace
}  // namespace nibble::quant
