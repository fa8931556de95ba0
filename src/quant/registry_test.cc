// Generic tests over every registered format (C8): traits agree with the DType table,
// the SIMD dequantizer equals the scalar Ref bit for bit on every compiled Highway
// target, and quantize -> dequantize stays inside each format's analytic bound.
#include "quant/registry.h"
#include "util/target_pin.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/float_convert.h"
#include "hwy/targets.h"
#include "quant/formats/iq4_nl/iq4_nl.h"
#include "quant/formats/q4_0/q4_0.h"
#include "quant/formats/q4_1/q4_1.h"
#include "quant/formats/q5_0/q5_0.h"
#include "quant/formats/q5_1/q5_1.h"
#include "quant/formats/q8_0/q8_0.h"

namespace nibble::quant {
namespace {

// Per-format analytic round-trip bounds (each derived next to its quantizer). This
// table goes once FormatTraits has a `round_trip_bound` field; until then a format
// with a quantizer and no row here fails RoundTripWithinAnalyticBound.
using BoundFn = double (*)(const float* x, const void* block) noexcept;
struct BoundRow {
  DType dtype;
  BoundFn bound;
};
constexpr BoundRow kBounds[] = {
    {DType::kQ4_0, &q4_0::RoundTripBound}, {DType::kQ4_1, &q4_1::RoundTripBound},
    {DType::kQ5_0, &q5_0::RoundTripBound}, {DType::kQ5_1, &q5_1::RoundTripBound},
    {DType::kQ8_0, &q8_0::RoundTripBound}, {DType::kIQ4_NL, &iq4_nl::RoundTripBound},
};

BoundFn FindBound(DType t) {
  for (const BoundRow& row : kBounds)
    if (row.dtype == t) return row.bound;
  return nullptr;
}

using test::TargetPin;

// Bitwise equality, except that any NaN equals any NaN: with random f16 scales a NaN or
// inf scale gives NaN outputs whose payload may depend on operand order.
bool SameFloat(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return F32Bits(a) == F32Bits(b);
}

TEST(Registry, EveryPackedDTypeHasExactlyItsFormat) {
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto t = static_cast<DType>(i);
    const FormatTraits* f = FindFormat(t);
    if (IsPacked(t)) {
      ASSERT_NE(f, nullptr) << DTypeName(t);
      EXPECT_EQ(f->dtype, t);
    } else {
      EXPECT_EQ(f, nullptr) << DTypeName(t);
    }
  }
  EXPECT_EQ(AllFormats().size(), 11u);  // the ggml block types nibble registers
}

TEST(Registry, TraitsAgreeWithDTypeTable) {
  for (const FormatTraits* f : AllFormats()) {
    SCOPED_TRACE(std::string(f->name));
    const DTypeInfo& info = GetDTypeInfo(f->dtype);
    EXPECT_EQ(f->name, DTypeName(f->dtype));
    EXPECT_EQ(f->block_elems, info.block_elems);
    EXPECT_EQ(f->block_bytes, info.block_bytes);
    EXPECT_EQ(f->bits_per_weight, 8.0 * f->block_bytes / f->block_elems);  // exact in binary
    std::string upper(f->name);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(f->hf_name, upper);  // ggml type names are the upper-case nibble names
    EXPECT_NE(f->dequantize, nullptr);
    EXPECT_NE(f->dequantize_ref, nullptr);
    for (const FormatTraits* g : AllFormats()) {
      if (g != f) {
        EXPECT_NE(g->name, f->name);
      }
    }
  }
}

// Random bytes, scales included (so NaN, inf and subnormal f16 scales all occur), an odd
// block count, input and output at odd addresses: every target must match the Ref.
TEST(Registry, SimdEqualsRefOnEveryTarget) {
  constexpr int kNumBlocks = 37;
  std::mt19937 rng(1234);
  TargetPin pin;
  const std::vector<int64_t> targets = test::HighwayTargetsToTest();
  ASSERT_FALSE(targets.empty());
  for (const FormatTraits* f : AllFormats()) {
    SCOPED_TRACE(std::string(f->name));
    const int64_t n = int64_t{kNumBlocks} * f->block_elems;
    std::vector<uint8_t> bytes(kNumBlocks * f->block_bytes + 1);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    const uint8_t* blocks = bytes.data() + 1;  // odd address
    std::vector<float> want(n), got(n + 1);
    f->dequantize_ref(blocks, want.data(), n);
    for (int64_t target : targets) {
      SCOPED_TRACE(hwy::TargetName(target));
      pin.Pin(target);
      std::fill(got.begin(), got.end(), -1.0f);
      f->dequantize(blocks, got.data() + 1, n);
      int mismatches = 0;
      for (int64_t i = 0; i < n; ++i)
        if (!SameFloat(got[i + 1], want[i]) && ++mismatches <= 3)
          ADD_FAILURE() << "element " << i << ": simd " << got[i + 1] << " ref " << want[i];
      EXPECT_EQ(mismatches, 0);
    }
  }
}

// Quantize N(0, sigma) blocks at magnitudes 1e-3 .. 1e2 and check every element against
// the format's analytic per-block bound. The bound is a proof, so the tolerance is 0.
TEST(Registry, RoundTripWithinAnalyticBound) {
  constexpr int kNumBlocks = 64;
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int formats_checked = 0;
  for (const FormatTraits* f : AllFormats()) {
    if (f->quantize_ref == nullptr) continue;
    SCOPED_TRACE(std::string(f->name));
    const BoundFn bound = FindBound(f->dtype);
    ASSERT_NE(bound, nullptr) << "format has a quantizer but no RoundTripBound row";
    const int64_t n = int64_t{kNumBlocks} * f->block_elems;
    std::vector<float> x(n), y(n);
    for (int64_t i = 0; i < n; ++i) {
      const float sigma = std::pow(10.0f, static_cast<float>(i / f->block_elems % 6) - 3.0f);
      x[i] = sigma * normal(rng);
    }
    std::vector<uint8_t> blocks(kNumBlocks * f->block_bytes);
    f->quantize_ref(x.data(), blocks.data(), n);
    f->dequantize(blocks.data(), y.data(), n);
    double worst_ratio = 0.0;  // max error / bound over all blocks, reported for the record
    for (int b = 0; b < kNumBlocks; ++b) {
      const float* xb = x.data() + int64_t{b} * f->block_elems;
      const float* yb = y.data() + int64_t{b} * f->block_elems;
      const double limit = bound(xb, blocks.data() + b * f->block_bytes);
      double err = 0.0;
      for (uint32_t j = 0; j < f->block_elems; ++j) err = std::max(err, std::fabs(double{xb[j]} - yb[j]));
      EXPECT_LE(err, limit) << "block " << b;
      if (limit > 0) worst_ratio = std::max(worst_ratio, err / limit);
    }
    // A bound far above every error would not test anything: the worst block must use
    // a real share of it (the bounds are within a few x of the true worst case).
    EXPECT_GT(worst_ratio, 0.2) << "bound is too loose to be a test";
    ++formats_checked;
  }
  EXPECT_EQ(formats_checked, 6);  // q4_0 q4_1 q5_0 q5_1 q8_0 iq4_nl
}

// Quantize is deterministic and blocks are independent: quantizing a row equals
// quantizing each block alone.
TEST(Registry, QuantizeIsBlockwise) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const FormatTraits* f : AllFormats()) {
    if (f->quantize_ref == nullptr) continue;
    SCOPED_TRACE(std::string(f->name));
    constexpr int kNumBlocks = 5;
    const int64_t n = int64_t{kNumBlocks} * f->block_elems;
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    std::vector<uint8_t> whole(kNumBlocks * f->block_bytes), each(whole.size());
    f->quantize_ref(x.data(), whole.data(), n);
    for (int b = 0; b < kNumBlocks; ++b)
      f->quantize_ref(x.data() + int64_t{b} * f->block_elems, each.data() + b * f->block_bytes, f->block_elems);
    EXPECT_EQ(whole, each);
  }
}

}  // namespace
}  // namespace nibble::quant
