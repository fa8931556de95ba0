// The int8-activation 4-bit GEMV (qgemv4_i8.h) against its definition, recomputed here
// in double from the stored codes: the kernel and the Ref compute the same integers, so
// they may differ from it only by f32 rounding. The kernel's lanes hold the products
// with the weights offset by +128 and the offset's correction (-128 sum q), so its f32
// values reach s_j · Σ_k (|T_k| + 256)|q_k| per block: the bound is 1e-5 times that sum
// over blocks (at most K/64 + 32 additions and 3 roundings per term, 6e-8 each, for
// K <= 4096: 2e-6). That bound is several integer steps wide at large K, so
// ExactIntegersBitForBit holds the integers to exact arithmetic, bit for bit. The
// quantization error against the f64 product of the dequantized weights is bounded
// analytically per element.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <cstring>
#include <random>
#include <span>
#include <tuple>
#include <vector>

#include "core/cpu_features.h"
#include "quant/formats/int4/int4.h"
#include "quant/formats/nf4/nf4.h"
#include "quant/qgemv.h"
#include "quant/qgemv4_i8.h"
#include "quant/qlinear.h"
#include "quant/qtensor.h"
#include "quant/registry.h"
#include "util/cpu_cap.h"
#include "util/random_vec.h"

namespace nibble::quant {
namespace {

// The call policy these tests run 4-bit weights under: int8 activations.
const QLinearPolicy kInt8{.int8_activations = true};

TEST(Int8Activations, TablesFromTheFormatLuts) {
  const Int8Table nf4 = MakeInt8Table(nf4::kLut);
  EXPECT_FLOAT_EQ(nf4.mult, 127.0f);
  EXPECT_EQ(nf4.t[0], -127);
  EXPECT_EQ(nf4.t[7], 0);  // NF4's exact zero
  EXPECT_EQ(nf4.t[15], 127);
  for (const BlockwiseTraits* f : AllBlockwiseFormats()) {
    if (f->code_bits != 4) continue;
    const Int8Table t = MakeInt8Table(f->lut);
    for (int c = 0; c < 16; ++c) {
      EXPECT_LE(std::fabs(t.t[c] - f->lut[c] * t.mult), 0.5f) << f->name << " code " << c;
      EXPECT_LE(std::abs(t.t[c]), 127) << f->name;
    }
  }
  const Int8Table i4 = MakeInt8Table(int4::kLut);  // integer table: exact, 15 = floor(127 / 8)
  EXPECT_EQ(i4.mult, 15.0f);
  for (int c = 0; c < 16; ++c) EXPECT_EQ(i4.t[c], 15 * (c - 8));
}

TEST(Int8Activations, ActivationQuantizationWithinHalfAStep) {
  std::vector<float> x = test::NormalVec(64 * 5, 1, 1.0f);
  for (int k = 64; k < 128; ++k) x[k] = 0.0f;  // an all-zero block
  x[200] = 1e4f;                               // an outlier dominates its block
  x[300] = -3.0f;
  Q8Activations a;
  QuantizeActivationsQ8(x.data(), 320, &a);
  for (int j = 0; j < 5; ++j) {
    float amax = 0;
    int32_t sum = 0, qmax = 0;
    for (int k = 64 * j; k < 64 * (j + 1); ++k) {
      amax = std::max(amax, std::fabs(x[k]));
      sum += a.q[k];
      qmax = std::max(qmax, std::abs(int32_t{a.q[k]}));
      ASSERT_LE(std::fabs(a.q[k] * static_cast<double>(a.d[j]) - x[k]), a.d[j] * 0.5001 + 1e-30) << k;
    }
    EXPECT_EQ(a.d[j], amax / 127.0f);
    EXPECT_EQ(a.sum[j], sum);
    EXPECT_EQ(qmax, j == 1 ? 0 : 127) << "block " << j;  // the block's largest maps to ±127
  }
}

// y by the definition in double, and the magnitude the bound scales with (see the top).
void Definition(const QTensor& w, const float* x, int64_t M, std::vector<double>* y, std::vector<double>* mag) {
  const int64_t N = w.rows(), K = w.cols(), B = w.blocksize, bpr = K / B;
  const Int8Table t = MakeInt8Table(w.format->lut);
  y->assign(static_cast<size_t>(M * N), 0.0);
  mag->assign(y->size(), 0.0);
  std::vector<float> s(static_cast<size_t>(bpr));
  for (int64_t m = 0; m < M; ++m) {
    Q8Activations a;
    QuantizeActivationsQ8(x + m * K, K, &a);
    for (int64_t n = 0; n < N; ++n) {
      w.BlockScales(n * bpr, (n + 1) * bpr, s.data());
      for (int64_t j = 0; j < K / 64; ++j) {
        int64_t dot = 0, lanes = 0;
        for (int64_t k = j * 64; k < (j + 1) * 64; ++k) {
          const uint8_t byte = w.codes[static_cast<size_t>((n * K + k) / 2)];
          const int tk = t.t[k % 2 == 0 ? byte >> 4 : byte & 0xF], qk = a.q[static_cast<size_t>(k)];
          dot += tk * qk;
          lanes += (std::abs(tk) + 256) * std::abs(qk);
        }
        const double sj = static_cast<double>(a.d[j]) * s[static_cast<size_t>(j * 64 / B)] / t.mult;
        (*y)[m * N + n] += static_cast<double>(dot) * sj;
        (*mag)[m * N + n] += static_cast<double>(lanes) * std::fabs(sj);
      }
    }
  }
}

void ExpectMatchesDefinition(const QTensor& q, const std::vector<float>& x, int64_t M, const char* what) {
  const int64_t N = q.rows();
  std::vector<double> def, mag;
  Definition(q, x.data(), M, &def, &mag);
  std::vector<float> y(static_cast<size_t>(M * N)), yr(y.size()), yl(y.size());
  QGemv(2, x.data(), q, y.data(), M, kInt8);
  QGemvRef(x.data(), q, yr.data(), M, kInt8);
  Allocator alloc;
  QLinear(2, alloc, x.data(), q, yl.data(), M, kInt8);
  for (size_t i = 0; i < y.size(); ++i) {
    const double tol = 1e-5 * mag[i] + 1e-30;
    ASSERT_NEAR(y[i], def[i], tol) << what << " QGemv i=" << i;
    ASSERT_NEAR(yr[i], def[i], tol) << what << " Ref i=" << i;
    ASSERT_NEAR(yl[i], def[i], tol) << what << " QLinear i=" << i;
  }
}

TEST(Int8Activations, GemvMatchesDefinitionEveryFormatAndShape) {
  test::ForEachCap([&] {
    Allocator alloc;
    for (const BlockwiseTraits* f : AllBlockwiseFormats()) {
      if (f->code_bits != 4) continue;
      // K: one partial group (64, 192), whole groups (256, 4096), a group and a tail (320, 1088).
      for (auto [N, K, B] : {std::tuple<int64_t, int64_t, int64_t>{1, 64, 64}, {5, 192, 64}, {33, 256, 64},
                             {13, 320, 64}, {9, 1088, 64}, {8, 4096, 64}, {6, 512, 128}, {3, 512, 256}}) {
        for (bool dq : {false, true}) {
          const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 7, 0.02f);
          QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                                     {.method = f->method, .blocksize = B, .double_quant = dq}, 2);
          ASSERT_TRUE(SupportsInt8Activations(q));
          for (int64_t M : {int64_t{1}, int64_t{3}, int64_t{9}}) {
            std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 9, 1.0f);
            std::fill(x.begin(), x.begin() + 64, 0.0f);  // a zero activation block
            x[x.size() - 1] = 40.0f;                     // an outlier
            const std::string what = std::string(f->name) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                                     " B=" + std::to_string(B) + " dq=" + std::to_string(dq) + " M=" + std::to_string(M);
            ExpectMatchesDefinition(q, x, M, what.c_str());
          }
        }
      }
    }
  });
}

// A [N, K] 4-bit weight of blocksize 64 over the given codes and absmax (borrowed), with
// int8 activations on.
QTensor HandBuilt(QuantMethod m, int64_t N, int64_t K, std::span<const uint8_t> codes, std::span<const float> scales) {
  QTensor q;
  q.method = m;
  q.format = FindBlockwiseFormat(m);
  q.shape = Shape{N, K};
  q.blocksize = 64;
  q.codes = codes;
  q.scales = scales;
  return q;
}

// Every (high, low) nibble pair in every byte position of a block: codes 0..255 repeated,
// scales of both signs' magnitudes, so a wrong lane, nibble or table entry shows.
TEST(Int8Activations, EveryCodePairInEveryPosition) {
  test::ForEachCap([&] {
    const int64_t N = 16, K = 512;
    std::vector<uint8_t> codes(static_cast<size_t>(N * K / 2));
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 7 + i / 256) & 0xFF);
    std::vector<float> scales(static_cast<size_t>(N * K / 64));
    for (size_t i = 0; i < scales.size(); ++i) scales[i] = 0.01f * static_cast<float>(1 + i % 13);
    for (QuantMethod m : {QuantMethod::kNf4, QuantMethod::kFp4, QuantMethod::kInt4}) {
      const QTensor q = HandBuilt(m, N, K, codes, scales);
      for (int64_t M : {int64_t{1}, int64_t{2}}) {
        const std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 21, 0.5f);
        ExpectMatchesDefinition(q, x, M, MethodName(m).data());
      }
    }
  });
}

// Against the f64 product of the dequantized weights and the exact x: each element loses
// at most half an activation step (d/2) and the table's rounding |T/mult - lut|·absmax.
TEST(Int8Activations, QuantizationErrorWithinAnalyticBound) {
  test::ForEachCap([&] {
    Allocator alloc;
    const int64_t N = 24, K = 1024;
    const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 3, 0.02f);
    for (QuantMethod m : {QuantMethod::kNf4, QuantMethod::kFp4, QuantMethod::kInt4}) {
      QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32, {.method = m, .blocksize = 64}, 2);
      const Int8Table t = MakeInt8Table(q.format->lut);
      std::vector<float> wd(w.size());
      DequantizeMatrix(q, wd.data(), 1);
      const std::vector<float> x = test::NormalVec(static_cast<size_t>(K), 4, 1.0f);
      Q8Activations a;
      QuantizeActivationsQ8(x.data(), K, &a);
      std::vector<float> y(static_cast<size_t>(N));
      QGemv(2, x.data(), q, y.data(), 1, kInt8);
      double worst = 0;
      for (int64_t n = 0; n < N; ++n) {
        double exact = 0, bound = 0;
        for (int64_t k = 0; k < K; ++k) {
          const uint8_t byte = q.codes[static_cast<size_t>((n * K + k) / 2)];
          const int c = k % 2 == 0 ? byte >> 4 : byte & 0xF;
          const double absmax = q.scales[static_cast<size_t>((n * K + k) / 64)];
          const double werr = std::fabs(t.t[c] / static_cast<double>(t.mult) - q.format->lut[c]) * absmax;
          const double xerr = a.d[static_cast<size_t>(k / 64)] * 0.5;
          exact += static_cast<double>(x[k]) * wd[n * K + k];
          bound += std::fabs(wd[n * K + k]) * xerr + std::fabs(x[k]) * werr + xerr * werr;
        }
        ASSERT_NEAR(y[n], exact, bound * 1.001 + 1e-6) << MethodName(m) << " row " << n;
        worst = std::max(worst, std::fabs(y[n] - exact) / bound);
      }
      std::printf("%s: worst |error| / bound %.3f\n", MethodName(m).data(), worst);
    }
  });
}

TEST(Int8Activations, UnsupportedShapesAndFormatsIgnoreTheFlag) {
  Allocator alloc;
  const std::vector<float> w = test::NormalVec(8 * 100, 5, 0.02f), x = test::NormalVec(100, 6, 1.0f);
  for (QuantMethod m : {QuantMethod::kNf4, QuantMethod::kInt8Absmax}) {
    QTensor q = QuantizeMatrix(alloc, w.data(), Shape{8, 100}, DType::kF32, {.method = m, .blocksize = 64}, 1);
    std::vector<float> plain(8), flagged(8);
    QGemv(1, x.data(), q, plain.data(), 1);
    EXPECT_FALSE(SupportsInt8Activations(q)) << MethodName(m);
    QGemv(1, x.data(), q, flagged.data(), 1, kInt8);
    EXPECT_EQ(plain, flagged) << MethodName(m);
  }
}

// The one-pass AVX-512 activation quantizer writes the same bytes and floats as the
// scalar QuantizeActivationsQ8 + LayoutForVnni: ties at .5 (amax 127, so q = x),
// zero blocks, signed zeros, a huge outlier, a tail group of 1..3 blocks.
TEST(Int8Activations, VnniActivationQuantizerEqualsScalar) {
  if (!CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  for (int64_t K : {int64_t{64}, int64_t{128}, int64_t{192}, int64_t{256}, int64_t{576}, int64_t{4096}}) {
    std::vector<float> x = test::NormalVec(static_cast<size_t>(K), static_cast<uint32_t>(K), 1.0f);
    for (int k = 0; k < 64; ++k) x[k] = (k % 2 ? -1.0f : 1.0f) * (static_cast<float>(k) + 0.5f);  // ties
    x[0] = 127.0f;  // amax 127: q = round_half_even(x)
    if (K >= 128) {
      for (int k = 64; k < 128; ++k) x[k] = k % 3 ? 0.0f : -0.0f;
    }
    if (K >= 192) x[150] = 3e30f;
    for (float mult : {127.0f, 15.0f}) {
      Q8Activations a;
      QuantizeActivationsQ8(x.data(), K, &a);
      detail::VnniActivations ref, got;
      detail::LayoutForVnni(a, K, mult, &ref);
      detail::QuantizeForVnni(x.data(), K, mult, &got);
      EXPECT_EQ(got.xa, ref.xa) << K;
      EXPECT_EQ(got.bias, ref.bias) << K;
      ASSERT_EQ(got.sa.size(), ref.sa.size());
      for (size_t i = 0; i < ref.sa.size(); ++i) EXPECT_EQ(std::bit_cast<uint32_t>(got.sa[i]), std::bit_cast<uint32_t>(ref.sa[i])) << i;
    }
    Q8Activations a;
    QuantizeActivationsQ8(x.data(), K, &a);
    for (int k = 0; k < 64; ++k) EXPECT_EQ(a.q[k], static_cast<int8_t>(std::nearbyint(x[k]))) << k;  // RNE ties
  }
}

// Prompts (M >= 4) take the prompt tiles: on VNNI 2 rows x 4 tokens (odd N: a single-row
// tile; M = 11: two 4-token tiles and 3 single tokens), on AVX2 one row x 6 tokens in the
// int16 form (M = 11: one 6-token tile and 5 single tokens). Per (row, token) they compute
// the GEMV's integers in its lanes and its f32 steps in its order, so each row of the
// result equals a one-token call bit for bit.
TEST(Int8Activations, PromptTilesEqualTokenByToken) {
  test::ForEachCap([&] {
    Allocator alloc;
    for (auto [N, K, B] : {std::tuple<int64_t, int64_t, int64_t>{13, 320, 64}, {10, 1024, 128}}) {
      const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 31, 0.02f);
      QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                                 {.method = QuantMethod::kNf4, .blocksize = B, .double_quant = true}, 1);
      const int64_t M = 11;
      const std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 32, 1.0f);
      std::vector<float> y(static_cast<size_t>(M * N)), one(static_cast<size_t>(N));
      QGemv(2, x.data(), q, y.data(), M, kInt8);
      for (int64_t m = 0; m < M; ++m) {
        QGemv(1, x.data() + m * K, q, one.data(), 1, kInt8);
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(std::bit_cast<uint32_t>(y[m * N + n]), std::bit_cast<uint32_t>(one[n])) << "K=" << K << " m=" << m << " n=" << n;
      }
    }
  });
}

// Double-quantized absmax rebuilt with gathers inside the kernel: a row whose blocks
// straddle nested blocks (K / 64 = 5 blocks per row, nested blocks of 256) and scales
// where a wrong rebuilt absmax shows: the kernel equals the definition (rebuilt by
// QTensor::BlockScales) on every row.
TEST(Int8Activations, NestedScalesAcrossNestedBlocks) {
  test::ForEachCap([&] {
    Allocator alloc;
    const int64_t N = 301, K = 320;
    std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 41, 0.02f);
    for (int64_t i = 0; i < N * K; i += 97) w[static_cast<size_t>(i)] *= 40.0f;  // spread the absmax
    QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                               {.method = QuantMethod::kNf4, .blocksize = 64, .double_quant = true}, 1);
    ASSERT_TRUE(q.nested);
    for (int64_t M : {int64_t{1}, int64_t{5}, int64_t{13}}) {
      const std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 42, 1.0f);
      ExpectMatchesDefinition(q, x, M, "nested");
    }
  });
}

// Exact arithmetic, so any wrong integer shows bit for bit: per block amax = 127 · mult
// (d = mult, the activation scale d / mult = 1 exactly; q = x / mult exactly), every
// weight absmax 1, K = 512 (two groups: every lane sum and the final sum stay below 2^24,
// so f32 holds them exactly). y must equal Σ T[c] q as an integer, on the GEMV (M = 1)
// and the prompt tiles (M = 5), and in the Ref.
TEST(Int8Activations, ExactIntegersBitForBit) {
  test::ForEachCap([&] {
    const int64_t N = 12, K = 512;
    std::mt19937 rng(77);
    std::vector<uint8_t> codes(static_cast<size_t>(N * K / 2));
    for (uint8_t& c : codes) c = static_cast<uint8_t>(rng() & 0xFF);
    const std::vector<float> scales(static_cast<size_t>(N * K / 64), 1.0f);
    for (QuantMethod m : {QuantMethod::kNf4, QuantMethod::kInt4}) {
      const QTensor q = HandBuilt(m, N, K, codes, scales);
      const Int8Table t = MakeInt8Table(q.format->lut);
      for (int64_t M : {int64_t{1}, int64_t{5}, int64_t{13}}) {
        std::vector<int> qi(static_cast<size_t>(M * K));
        std::vector<float> x(qi.size());
        for (size_t i = 0; i < qi.size(); ++i) {
          qi[i] = i % 64 == 0 ? (i % 128 == 0 ? 127 : -127) : static_cast<int>(rng() % 255) - 127;
          x[i] = static_cast<float>(qi[i]) * t.mult;
        }
        std::vector<float> y(static_cast<size_t>(M * N)), yr(y.size());
        QGemv(2, x.data(), q, y.data(), M, kInt8);
        QGemvRef(x.data(), q, yr.data(), M, kInt8);
        for (int64_t mi = 0; mi < M; ++mi)
          for (int64_t n = 0; n < N; ++n) {
            int64_t exact = 0;
            for (int64_t k = 0; k < K; ++k) {
              const uint8_t byte = codes[static_cast<size_t>((n * K + k) / 2)];
              exact += t.t[k % 2 == 0 ? byte >> 4 : byte & 0xF] * qi[static_cast<size_t>(mi * K + k)];
            }
            ASSERT_EQ(y[mi * N + n], static_cast<float>(exact)) << MethodName(m) << " M=" << M << " n=" << n;
            ASSERT_EQ(yr[mi * N + n], static_cast<float>(exact)) << MethodName(m) << " Ref n=" << n;
          }
      }
    }
  });
}

// Blocks the codes cannot hold: NaN or inf makes every output NaN (as the f32 path
// does), on the kernel and the Ref; a block whose 127 / amax overflows contributes 0.
TEST(Int8Activations, NonFiniteAndTinyBlocks) {
  test::ForEachCap([&] {
    Allocator alloc;
    const int64_t N = 6, K = 320;
    const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 51, 0.02f);
    QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32, {.method = QuantMethod::kNf4}, 1);
    const std::vector<float> x0 = test::NormalVec(static_cast<size_t>(K), 52, 1.0f);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      std::vector<float> x = x0;
      x[70] = bad;
      std::vector<float> y(static_cast<size_t>(N)), yr(y.size());
      QGemv(1, x.data(), q, y.data(), 1, kInt8);
      QGemvRef(x.data(), q, yr.data(), 1, kInt8);
      for (int64_t n = 0; n < N; ++n) {
        EXPECT_TRUE(std::isnan(y[n])) << bad << " n=" << n << " " << y[n];
        EXPECT_TRUE(std::isnan(yr[n])) << bad << " Ref n=" << n;
      }
    }
    std::vector<float> tiny = x0, zeroed = x0;
    for (int k = 128; k < 192; ++k) {
      tiny[k] = k % 2 ? 1e-38f : 0.0f;  // amax 1e-38 < 127 / FLT_MAX
      zeroed[k] = 0.0f;
    }
    std::vector<float> yt(static_cast<size_t>(N)), yz(yt.size()), yrt(yt.size());
    QGemv(1, tiny.data(), q, yt.data(), 1, kInt8);
    QGemv(1, zeroed.data(), q, yz.data(), 1, kInt8);
    QGemvRef(tiny.data(), q, yrt.data(), 1, kInt8);
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_EQ(yt[n], yz[n]) << n;
      EXPECT_TRUE(std::isfinite(yrt[n])) << n;
    }
  });
}

// The VNNI kernel on a row range writes exactly those rows (the threads split by rows).
TEST(Int8Activations, VnniKernelWritesOnlyItsRows) {
  if (!CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  Allocator alloc;
  const int64_t N = 11, K = 320;
  const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 8, 0.02f), x = test::NormalVec(static_cast<size_t>(K), 2, 1.0f);
  QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                             {.method = QuantMethod::kNf4, .blocksize = 64, .double_quant = true}, 1);
  const Int8Table t = MakeInt8Table(q.format->lut);
  Q8Activations a;
  QuantizeActivationsQ8(x.data(), K, &a);
  detail::VnniActivations va;
  detail::LayoutForVnni(a, K, t.mult, &va);
  std::vector<float> y(static_cast<size_t>(N), -7.0f), buf(4 * 8);
  detail::Gemv4I8RowsVnni(&q, t, &va, 1, y.data(), 2, 9, buf.data());
  std::vector<double> def, mag;
  Definition(q, x.data(), 1, &def, &mag);
  for (int64_t n = 0; n < N; ++n) {
    if (n < 2 || n >= 9) {
      EXPECT_EQ(y[n], -7.0f) << n;
    } else {
      EXPECT_NEAR(y[n], def[n], 1e-5 * mag[n]) << n;
    }
  }
}

// The AVX2 kernel on a row range writes exactly those rows, for the GEMV form (M = 1:
// 4-row passes and a single-row tail) and the prompt form (M = 8: a 6-token tile and two
// single tokens), with blocksizes 64 and 128.
TEST(Int8Activations, Avx2KernelWritesOnlyItsRows) {
  if (!CpuHasAvx2Fma()) GTEST_SKIP() << "no AVX2 + FMA on this CPU (or capped below it)";
  Allocator alloc;
  const int64_t N = 11, K = 384, bpr = K / 64;
  const std::vector<float> w = test::NormalVec(static_cast<size_t>(N * K), 8, 0.02f);
  for (int64_t B : {int64_t{64}, int64_t{128}}) {
    QTensor q = QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                               {.method = QuantMethod::kNf4, .blocksize = B, .double_quant = true}, 1);
    const Int8Table t = MakeInt8Table(q.format->lut);
    for (int64_t M : {int64_t{1}, int64_t{8}}) {
      const std::vector<float> x = test::NormalVec(static_cast<size_t>(M * K), 2, 1.0f);
      std::vector<int8_t> xa(static_cast<size_t>(M * bpr * 128));
      std::vector<int16_t> x16(static_cast<size_t>(M * bpr * 64));
      std::vector<float> sa(static_cast<size_t>(M * bpr));
      for (int64_t m = 0; m < M; ++m) {
        Q8Activations a;
        QuantizeActivationsQ8(x.data() + m * K, K, &a);
        detail::LayoutForAvx2(a, K, t.mult, xa.data() + m * bpr * 128, sa.data() + m * bpr);
        detail::LayoutForAvx2Prompt(a, K, t.mult, x16.data() + m * bpr * 64, sa.data() + m * bpr);
      }
      std::vector<double> def, mag;
      Definition(q, x.data(), M, &def, &mag);
      for (bool prompt : {false, true}) {
        const detail::Avx2Activations act{prompt ? nullptr : xa.data(), prompt ? x16.data() : nullptr, sa.data()};
        std::vector<float> y(static_cast<size_t>(M * N), -7.0f), buf(static_cast<size_t>(4 * bpr));
        detail::Gemv4I8RowsAvx2(&q, t, act, M, y.data(), 2, 9, buf.data());
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            const size_t i = static_cast<size_t>(m * N + n);
            if (n < 2 || n >= 9) {
              EXPECT_EQ(y[i], -7.0f) << "B=" << B << " M=" << M << " prompt=" << prompt << " n=" << n;
            } else {
              EXPECT_NEAR(y[i], def[i], 1e-5 * mag[i]) << "B=" << B << " M=" << M << " prompt=" << prompt << " n=" << n;
            }
          }
      }
    }
  }
}

// The AVX2 layouts: per block the even codes, the odd codes, then their magnitudes (GEMV);
// the int16 codes in the kernel's weight order (prompts); d / mult.
TEST(Int8Activations, Avx2LayoutsHoldCodesMagnitudesAndOrder) {
  const int64_t K = 192;
  std::vector<float> x = test::NormalVec(static_cast<size_t>(K), 5, 1.0f);
  x[3] = -9.0f;  // a block's absmax is negative: its code is -127
  Q8Activations a;
  QuantizeActivationsQ8(x.data(), K, &a);
  std::vector<int8_t> xa(3 * 128);
  std::vector<int16_t> x16(3 * 64);
  std::vector<float> sa(3), sa16(3);
  detail::LayoutForAvx2(a, K, 15.0f, xa.data(), sa.data());
  detail::LayoutForAvx2Prompt(a, K, 15.0f, x16.data(), sa16.data());
  static constexpr int kOrder[4][2] = {{0, 2}, {4, 6}, {1, 3}, {5, 7}};
  for (int64_t b = 0; b < 3; ++b) {
    EXPECT_EQ(sa[b], a.d[b] / 15.0f);
    EXPECT_EQ(sa16[b], a.d[b] / 15.0f);
    for (int64_t i = 0; i < 32; ++i) {
      const int8_t e = a.q[b * 64 + 2 * i], o = a.q[b * 64 + 2 * i + 1];
      EXPECT_EQ(xa[b * 128 + i], e);
      EXPECT_EQ(xa[b * 128 + 32 + i], o);
      EXPECT_EQ(xa[b * 128 + 64 + i], std::abs(e));
      EXPECT_EQ(xa[b * 128 + 96 + i], std::abs(o));
    }
    for (int part = 0; part < 4; ++part)
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 2; ++j)
          EXPECT_EQ(x16[b * 64 + part * 16 + 2 * i + j], a.q[b * 64 + 8 * i + kOrder[part][j]]) << b << " " << part << " " << i;
  }
  EXPECT_EQ(a.q[3], -127);
}

}  // namespace
}  // namespace nibble::quant
