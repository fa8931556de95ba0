// Conformance tests of ../shared/specs/bnb-compatible-quantization.md §8 with the test
// vectors of §7: constants bit for bit, select8 against its linear definition, TV1-TV4
// and TV7 codes/bytes/absmax exactly (for f32, f16 and bf16 inputs), TV6 (LLM.int8()).
// References: the spec's published hex values; tolerances: exact unless stated.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/float_convert.h"
#include "quant/formats/dynamic8/dynamic8.h"
#include "quant/formats/fp4/fp4.h"
#include "quant/formats/nf4/nf4.h"
#include "quant/llm_int8/llm_int8.h"
#include "quant/qtensor.h"

namespace nibble::quant {
namespace {

std::vector<uint8_t> Hex(const std::string& s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

// The spec's inputs are exact in f32, f16 and bf16: each dtype must give the same codes.
std::vector<std::vector<float>> InDtypes(const std::vector<float>& x) {
  std::vector<float> h(x.size()), b(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    h[i] = F16ToF32(F32ToF16(x[i]));
    b[i] = BF16ToF32(F32ToBF16(x[i]));
  }
  return {x, h, b};
}

struct Quant4 {
  std::vector<uint8_t> packed;
  std::vector<float> absmax;
};
Quant4 Run4(const BlockwiseTraits& f, const std::vector<float>& x, int64_t B = 64) {
  const auto n = static_cast<int64_t>(x.size());
  Quant4 q{std::vector<uint8_t>(static_cast<size_t>((n + 1) / 2)), std::vector<float>(NumBlocks(n, B))};
  f.quantize_ref(x.data(), n, B, q.packed.data(), q.absmax.data(), nullptr);
  return q;
}

// ---- §8.1 constants ----
TEST(BnbSpec, Nf4TableAndThresholdsAreTheBinary32Midpoints) {
  for (int k = 0; k < 15; ++k) {
    const float mid = (nf4::Value(k) + nf4::Value(k + 1)) / 2.0f;
    EXPECT_EQ(Bits(mid), nf4::kThresholdBits[k]) << "threshold " << k;
    EXPECT_LT(nf4::Value(k), nf4::Value(k + 1));
  }
  EXPECT_EQ(nf4::Value(7), 0.0f);
  EXPECT_EQ(nf4::Value(0), -1.0f);
  EXPECT_EQ(nf4::Value(15), 1.0f);
  EXPECT_EQ(Bits(nf4::Value(14)), 0x3f3913b3u);  // 0.7229568362236023
}

TEST(BnbSpec, Fp4TableInCodeOrder) {
  const float unnormalised[8] = {0, 0.0625f, 8, 12, 4, 6, 2, 3};
  for (int m = 0; m < 8; ++m) {
    EXPECT_EQ(Bits(fp4::Magnitude(m)), Bits(unnormalised[m] / 12.0f)) << m;
    EXPECT_EQ(Bits(fp4::kLut[m]), Bits(fp4::Magnitude(m)));
    EXPECT_EQ(Bits(fp4::kLut[8 + m]), Bits(-fp4::Magnitude(m)));
  }
  EXPECT_EQ(Bits(fp4::kLut[8]), 0x80000000u);      // decodes to -0.0
  EXPECT_EQ(Bits(fp4::kQuantMap[8]), 0x00000000u);  // serialised as +0.0
  const uint32_t thresholds[7] = {0x3b2aaab9, 0x3db00000, 0x3e555555, 0x3e955555, 0x3ed55556, 0x3f155550, 0x3f555555};
  const float literals[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};
  for (int k = 0; k < 7; ++k) {
    EXPECT_EQ(fp4::kThresholdBits[k], thresholds[k]);
    EXPECT_EQ(Bits(literals[k]), thresholds[k]) << "the kernel's decimal literal " << k;
  }
}

TEST(BnbSpec, Int8Constants) {
  EXPECT_EQ(Bits(1.0f / 16129.0f), 0x38820610u);
  EXPECT_EQ(Bits(llm_int8::kK8), 0x38820610u);
  EXPECT_EQ(Bits(1.0f / 127.0f), 0x3c010204u);
  EXPECT_EQ(Bits(llm_int8::kInv127), 0x3c010204u);
}

TEST(BnbSpec, DynamicMapsRegenerateFromTheFmaLinspace) {
  const dynamic8::Map s = dynamic8::GenerateMap(true, true), u = dynamic8::GenerateMap(false, true);
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(Bits(s[i]), dynamic8::kSignedBits[i]) << "signed " << i;
    EXPECT_EQ(Bits(u[i]), dynamic8::kUnsignedBits[i]) << "unsigned " << i;
  }
  EXPECT_EQ(s[127], 0.0f);
  EXPECT_EQ(s[255], 1.0f);
  EXPECT_EQ(Bits(s[0]), Bits(-0.992968738079071f));
  for (int k = 0; k < 255; ++k) EXPECT_EQ(s[254 - k], -s[k]) << k;  // index 127 is +0 both ways
}

TEST(BnbSpec, NonFmaMapDiffersExactlyWhereTheSpecSays) {
  const std::vector<int> signed_diff = {18,  20,  23,  25,  28,  30,  34,  39,  41,  46,  51,  58,  72,  80,
                                        83,  87,  89,  92,  102, 116, 117, 137, 138, 152, 162, 165, 167, 171,
                                        174, 182, 196, 203, 208, 213, 215, 220, 224, 226, 229, 231, 234, 236};
  const std::vector<int> unsigned_diff = {9,  17, 20, 24,  34,  37,  39,  43,  46,  54,  68,  75,  85,  92,  96, 98,
                                          101, 103, 106, 138, 143, 146, 148, 150, 163, 168, 173, 174, 178, 179, 186};
  for (bool is_signed : {true, false}) {
    const dynamic8::Map fma = dynamic8::GenerateMap(is_signed, true), plain = dynamic8::GenerateMap(is_signed, false);
    std::vector<int> diff;
    for (int i = 0; i < 256; ++i) {
      if (Bits(fma[i]) != Bits(plain[i])) {
        diff.push_back(i);
        EXPECT_EQ(Bits(fma[i]) >> 16, Bits(plain[i]) >> 16) << "only the low 4 hex digits differ, index " << i;
      }
    }
    EXPECT_EQ(diff, is_signed ? signed_diff : unsigned_diff);
  }
  // Spot values from the lists: signed 18: 6666 -> 6667, unsigned 9: e868 -> e867.
  EXPECT_EQ(Bits(dynamic8::GenerateMap(true, false)[18]) & 0xFFFF, 0x6667u);
  EXPECT_EQ(Bits(dynamic8::GenerateMap(false, false)[9]) & 0xFFFF, 0xe867u);
}

// ---- §8.2 select8 ----
TEST(BnbSpec, Select8BinarySearchEqualsLinearDefinition) {
  for (const dynamic8::Map& map : {dynamic8::SignedMap(), dynamic8::UnsignedMap()}) {
    const dynamic8::Midpoints mids = dynamic8::MidpointsOf(map);
    for (float m : mids) {
      for (float v : {m, std::nextafter(m, -2.0f), std::nextafter(m, 2.0f)})
        ASSERT_EQ(dynamic8::Select(mids, v), dynamic8::SelectRef(map, v)) << v;
    }
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.2f, 1.2f);
    for (int i = 0; i < 1000000; ++i) {
      const float v = dist(rng);
      ASSERT_EQ(dynamic8::Select(mids, v), dynamic8::SelectRef(map, v)) << v;
    }
    EXPECT_EQ(dynamic8::Select(mids, std::nanf("")), 0);
    EXPECT_EQ(dynamic8::Select(mids, 5.0f), 255);
    EXPECT_EQ(dynamic8::Select(mids, -5.0f), 0);
  }
}

// The table-driven Select (8-bit optimizer) equals the binary search at every midpoint and
// one ulp either side, on every 4099th binary32 bit pattern (all exponents, both signs,
// infinities, zeros, subnormals, NaNs) and on 10^6 random points of [-1.2, 1.2].
TEST(BnbSpec, Select8TableEqualsBinarySearch) {
  for (const dynamic8::Map& map : {dynamic8::SignedMap(), dynamic8::UnsignedMap()}) {
    const dynamic8::Midpoints mids = dynamic8::MidpointsOf(map);
    const dynamic8::SelectTable table = dynamic8::MakeSelectTable(map);
    for (float m : mids)
      for (float v : {m, std::nextafter(m, -2.0f), std::nextafter(m, 2.0f), -m})
        ASSERT_EQ(dynamic8::Select(table, v), dynamic8::Select(mids, v)) << v;
    for (uint64_t b = 0; b <= 0xffffffffull; b += 4099) {
      const float v = std::bit_cast<float>(static_cast<uint32_t>(b));
      ASSERT_EQ(dynamic8::Select(table, v), dynamic8::Select(mids, v)) << std::hex << b;
    }
    for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, std::nanf(""), 1.0f, -1.0f})
      ASSERT_EQ(dynamic8::Select(table, v), dynamic8::Select(mids, v)) << v;
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> dist(-1.2f, 1.2f);
    for (int i = 0; i < 1000000; ++i) {
      const float v = dist(rng);
      ASSERT_EQ(dynamic8::Select(table, v), dynamic8::Select(mids, v)) << v;
    }
  }
}

// ---- §8.3 TV1-TV4, TV7 ----
TEST(BnbSpec, TV1Nf4OneBlock) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i - 32) / 16.0f;
  for (const auto& in : InDtypes(x)) {
    const Quant4 q = Run4(nf4::kTraits, in);
    EXPECT_EQ(q.packed, Hex("00 00 01 11 11 11 12 22 22 33 33 44 45 55 66 67 77 88 99 9a aa bb bc cc cd dd de ee ee "
                            "ee ff ff"));
    EXPECT_EQ(Bits(q.absmax[0]), 0x40000000u);
    std::vector<float> out(64);
    nf4::DequantizeRef(q.packed.data(), q.absmax.data(), nullptr, 64, 64, out.data());
    const double want[16] = {-2.0, -1.3923856019973755, -1.0501461029052734, -0.7898349761962891,
                             -0.5688827633857727, -0.3695468604564667, -0.1821000725030899, 0.0,
                             0.15916059911251068, 0.3218604028224945, 0.4922246038913727, 0.6758304834365845,
                             0.8814196586608887, 1.1252340078353882, 1.4459136724472046, 2.0};
    const uint16_t bf16[16] = {0xc000, 0xbfb2, 0xbf86, 0xbf4a, 0xbf12, 0xbebd, 0xbe3a, 0x0000,
                               0x3e23, 0x3ea5, 0x3efc, 0x3f2d, 0x3f62, 0x3f90, 0x3fb9, 0x4000};
    for (int i = 0; i < 64; ++i) {
      const int c = Code4At(q.packed.data(), i);
      EXPECT_EQ(Bits(out[i]), Bits(static_cast<float>(want[c]))) << i;
      EXPECT_EQ(F32ToBF16(out[i]), bf16[c]) << i;
    }
  }
}

TEST(BnbSpec, TV2Fp4OneBlock) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i - 32) / 16.0f;
  for (const auto& in : InDtypes(x)) {
    const Quant4 q = Run4(fp4::kTraits, in);
    EXPECT_EQ(q.packed, Hex("bb bb bb aa aa aa aa dd dd dc cc cf ff ee ee 99 01 16 66 67 77 44 44 55 55 52 22 22 22 "
                            "23 33 33"));
    std::vector<float> out(64);
    fp4::DequantizeRef(q.packed.data(), q.absmax.data(), nullptr, 64, 64, out.data());
    EXPECT_EQ(Bits(out[0]), Bits(-2.0f));
    EXPECT_EQ(Bits(out[6]), Bits(-1.3333333730697632f));
    EXPECT_EQ(Bits(out[30]), Bits(-0.010416666977107525f));  // code 9
    EXPECT_EQ(Bits(out[32]), Bits(0.0f));
    EXPECT_EQ(Bits(out[35]), Bits(0.3333333432674408f));  // code 6
    EXPECT_EQ(Bits(out[63]), Bits(2.0f));
  }
  EXPECT_EQ(fp4::SelectRef(-0.0625f), 9);
  EXPECT_EQ(fp4::SelectRef(0.09375f), 6);
}

TEST(BnbSpec, TV3OddLengthSignedZeroZeroBlockTail) {
  for (const auto& in : InDtypes({0.5f, -1.0f, 0.25f, 0.0f, 0.75f})) {
    EXPECT_EQ(Run4(nf4::kTraits, in).packed, Hex("c0 a7 e7"));
    EXPECT_EQ(Run4(fp4::kTraits, in).packed, Hex("5b 70 20"));
  }
  const std::vector<float> b = {-0.001f, 0.001f, 0.003f, -0.003f, 1.0f, -0.0f};
  const Quant4 f = Run4(fp4::kTraits, b);
  EXPECT_EQ(f.packed, Hex("80 19 30"));
  std::vector<float> out(6);
  fp4::DequantizeRef(f.packed.data(), f.absmax.data(), nullptr, 6, 64, out.data());
  const float want[6] = {-0.0f, 0.0f, 0.0052083334885537624f, -0.0052083334885537624f, 1.0f, 0.0f};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Bits(out[i]), Bits(want[i])) << i;
  EXPECT_EQ(Run4(nf4::kTraits, b).packed, Hex("77 77 f7"));
  // (c) all-zero block.
  const std::vector<float> z(4, 0.0f);
  for (const BlockwiseTraits* t : {&nf4::kTraits, &fp4::kTraits}) {
    const Quant4 q = Run4(*t, z);
    EXPECT_EQ(q.packed, Hex("00 00"));
    EXPECT_EQ(q.absmax[0], 0.0f);
    t->dequantize_ref(q.packed.data(), q.absmax.data(), nullptr, 4, 64, out.data());
    for (int i = 0; i < 4; ++i) EXPECT_EQ(Bits(out[i]), t == &nf4::kTraits ? 0x80000000u : 0u);
  }
  // (d) tail block.
  std::vector<float> x(100);
  for (int i = 0; i < 100; ++i) x[i] = static_cast<float>(i - 50) / 8.0f;
  for (const auto& in : InDtypes(x)) {
    const Quant4 q = Run4(nf4::kTraits, in);
    EXPECT_EQ(q.absmax, (std::vector<float>{6.25f, 6.125f}));
    EXPECT_EQ(q.packed, Hex("00 00 00 00 11 11 11 11 11 11 22 22 22 22 33 33 33 44 44 45 55 55 66 66 77 77 88 88 89 99 "
                            "9a aa ab bb bb cc cc cd dd dd dd ee ee ee ee ee ef ff ff ff"));
  }
}

TEST(BnbSpec, TV4Nf4DoubleQuant) {
  const float a[6] = {0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f};
  std::vector<float> w(6 * 64);
  for (int r = 0; r < 6; ++r)
    for (int i = 0; i < 64; ++i) w[r * 64 + i] = a[r] * static_cast<float>(i - 32) / 32.0f;
  Allocator alloc;
  for (const auto& in : InDtypes(w)) {
    const QTensor q = QuantizeMatrix(alloc, in.data(), Shape{6, 64}, DType::kBF16,
                                     {.method = QuantMethod::kNf4, .blocksize = 64, .double_quant = true}, 2);
    ASSERT_TRUE(q.nested);
    const std::vector<uint8_t> tv1 = Hex(
        "00 00 01 11 11 11 12 22 22 33 33 44 45 55 66 67 77 88 99 9a aa bb bc cc cd dd de ee ee ee ff ff");
    for (int r = 0; r < 6; ++r)
      EXPECT_TRUE(std::equal(tv1.begin(), tv1.end(), q.codes.begin() + r * 32)) << "row " << r;
    EXPECT_EQ(std::vector<uint8_t>(q.scale_codes.begin(), q.scale_codes.end()), Hex("00 1c 38 c6 e2 ff"));
    EXPECT_EQ(q.nested_offset, 1.75f);
    ASSERT_EQ(q.nested_absmax.size(), 1u);
    EXPECT_EQ(Bits(q.nested_absmax[0]), 0x3fa00000u);
    float ahat[6];
    q.BlockScales(0, 6, ahat);
    const uint32_t want[6] = {0x3f024000, 0x3f802000, 0x3fbf2000, 0x40007000, 0x401ff000, 0x40400000};
    for (int j = 0; j < 6; ++j) EXPECT_EQ(Bits(ahat[j]), want[j]) << j;
    std::vector<float> out(6 * 64);
    DequantizeMatrix(q, out.data(), 1);
    EXPECT_EQ(out[0], -0.5087890625f);
    EXPECT_EQ(F32ToBF16(out[0]), 0xbf02);
    EXPECT_EQ(out[5 * 64], -3.0f);
  }
}

TEST(BnbSpec, TV7Dynamic8Blockwise) {
  const std::vector<float> x = {0.0f, 1.0f, -1.0f, 0.5f, -0.25f, 0.1f, 0.001f, -0.03f};
  const dynamic8::Map map = dynamic8::SignedMap();
  for (float scale : {1.0f, 2.0f}) {
    std::vector<float> xs(x);
    for (float& v : xs) v *= scale;
    std::vector<uint8_t> codes(8);
    float absmax = 0;
    dynamic8::Quantize(map, xs.data(), 8, 256, codes.data(), &absmax);
    EXPECT_EQ(codes, (std::vector<uint8_t>{127, 255, 0, 219, 53, 190, 142, 88}));
    EXPECT_EQ(absmax, scale);
  }
  std::vector<uint8_t> codes = {127, 255, 0, 219, 53, 190, 142, 88};
  std::vector<float> out(8);
  const float one = 1.0f;
  dynamic8::Dequantize(map.data(), codes.data(), &one, 8, 256, out.data());
  const float want[8] = {0.0f, 1.0f, -0.992968738079071f, 0.500781238079071f, -0.24765624105930328f,
                         0.09859374910593033f, 0.0009437500848434865f, -0.031093750149011612f};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(Bits(out[i]), Bits(want[i])) << i;
  const dynamic8::Midpoints mids = dynamic8::MidpointsOf(map);
  EXPECT_EQ(Bits(mids[200]), Bits(0.24062499403953552f));
  EXPECT_EQ(dynamic8::Select(mids, mids[200]), 200);
  EXPECT_EQ(Bits(mids[201]), Bits(0.25468748807907104f));
  EXPECT_EQ(dynamic8::Select(mids, mids[201]), 202);
}

// ---- §8.4 round-trip bound ----
TEST(BnbSpec, RoundTripBoundNf4Fp4) {
  for (int64_t n : {1, 7, 63, 64, 65, 1001, 4096 + 33}) {
    const std::vector<float> x = [&] {
      std::mt19937 rng(static_cast<uint32_t>(n));
      std::normal_distribution<float> d(0.0f, 0.02f);
      std::vector<float> v(static_cast<size_t>(n));
      for (float& e : v) e = d(rng);
      return v;
    }();
    for (const BlockwiseTraits* f : {&nf4::kTraits, &fp4::kTraits}) {
      for (bool dq : {false, true}) {
        Allocator alloc;
        const QTensor q = QuantizeMatrix(alloc, x.data(), Shape{1, n}, DType::kF32,
                                         {.method = f->method, .blocksize = 64, .double_quant = dq}, 2);
        std::vector<float> out(static_cast<size_t>(n));
        DequantizeMatrix(q, out.data(), 1);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t b = i / 64;
          float a = 0;
          for (int64_t j = b * 64; j < std::min(n, b * 64 + 64); ++j) a = std::max(a, std::fabs(x[j]));
          float ahat;
          q.BlockScales(b, b + 1, &ahat);
          const double bound = a * f->max_gap / 2 + std::fabs(a - ahat) + std::nextafter(std::fabs(out[i]), 1e30f) -
                               std::fabs(out[i]);
          ASSERT_LE(std::fabs(static_cast<double>(x[i]) - out[i]), bound + 1e-12)
              << f->name << " dq=" << dq << " n=" << n << " i=" << i;
        }
      }
    }
  }
}

// ---- §8.6 TV6 LLM.int8() ----
TEST(BnbSpec, TV6LlmInt8) {
  const float w[12] = {0.5f, -1.0f, 0.25f, 2.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.75f, -0.375f, 3.0f, 1.5f};
  int8_t cb[12];
  float scb[3];
  llm_int8::QuantizeWeightRef(w, 3, 4, cb, scb);
  EXPECT_EQ(std::vector<float>(scb, scb + 3), (std::vector<float>{2.0f, 1.0f, 3.0f}));
  EXPECT_EQ(std::vector<int8_t>(cb, cb + 12),
            (std::vector<int8_t>{32, -64, 16, 127, 127, 127, 127, 127, 32, -16, 127, 64}));
  const float x[8] = {1.0f, 2.0f, 8.0f, -0.5f, 0.25f, -4.0f, 5.0f, 3.0f};
  const llm_int8::ActivationQuant aq = llm_int8::QuantizeActivationsRef(x, 2, 4, 6.0f);
  EXPECT_EQ(aq.outlier_cols, std::vector<int32_t>{2});
  EXPECT_EQ(aq.sca, (std::vector<float>{2.0f, 5.0f}));
  EXPECT_EQ(aq.ca, (std::vector<int8_t>{64, 127, 0, -32, 6, -102, 0, 76}));
  int32_t acc[6];
  llm_int8::Int8MatMulRef(aq.ca.data(), cb, 2, 3, 4, acc);
  EXPECT_EQ(std::vector<int32_t>(acc, acc + 6), (std::vector<int32_t>{-10144, 20193, -2032, 16372, -2540, 6688}));
  // Outputs to 1e-6 relative in binary32 (§8.6): Y = Y8 + outlier column.
  const double want[6] = {-0.4999690055847168, 10.503936767578125, 23.244094848632812,
                          11.410503387451172,  4.2125983238220215, 21.219852447509766};
  float y[6], y_fast[6];
  llm_int8::MatMulRef(x, 2, cb, scb, 3, 4, 6.0f, y);
  llm_int8::MatMul(2, x, 2, cb, scb, 3, 4, 6.0f, y_fast);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(y[i], want[i], 1e-6 * std::fabs(want[i])) << i;
    EXPECT_EQ(Bits(y_fast[i]), Bits(y[i])) << "fast path equals the reference bit for bit, " << i;
  }
  // fp16 cast of the result as the spec lists it.
  const uint16_t want_h[6] = {F32ToF16(-0.5f), F32ToF16(10.5078125f), F32ToF16(23.25f),
                              F32ToF16(11.4140625f), F32ToF16(4.2109375f), F32ToF16(21.21875f)};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(F32ToF16(y[i]), want_h[i]) << i;
}

}  // namespace
}  // namespace nibble::quant
