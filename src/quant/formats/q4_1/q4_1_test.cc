// Q4_1 format tests: code decoding with the min, the constant block (reference: the
// layout in q4_1.h and ggml's quantize_row_q4_1_ref; tolerance exact).
#include "quant/formats/q4_1/q4_1.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/float_convert.h"

namespace nibble::quant::q4_1 {
namespace {

TEST(Q4_1Format, DecodesCodeTimesScalePlusMin) {
  Block blk;
  blk.d = F32ToF16(0.125f);
  blk.m = F32ToF16(-1.0f);
  for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>((15 - j) | (j << 4));
  float out[32];
  DequantizeRef(&blk, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (15 - j) * 0.125f - 1.0f) << j;
    EXPECT_EQ(out[j + 16], j * 0.125f - 1.0f) << j;
  }
}

TEST(Q4_1Format, ConstantBlockDecodesToItsValue) {
  float x[32];
  for (float& v : x) v = 0.75f;  // exact in f16
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(blk.d, 0);
  float y[32];
  Dequantize(&blk, y, 32);
  for (float v : y) EXPECT_EQ(v, 0.75f);
}

TEST(Q4_1Format, MinAndMaxAreOnTheGrid) {
  // min -1, max 2: d = 0.2 (not exact in f16), so the max decodes within 15*|d - d16|.
  float x[32] = {};
  x[0] = -1.0f;
  x[31] = 2.0f;
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(blk.qs[0] & 0xF, 0);
  EXPECT_EQ(blk.qs[15] >> 4, 15);
  float y[32];
  DequantizeRef(&blk, y, 32);
  EXPECT_EQ(y[0], -1.0f);
  const double kTolMax = 15 * std::abs(0.2 - F16ToF32(blk.d)) + 1e-6;  // f16 rounding of d
  EXPECT_NEAR(y[31], 2.0, kTolMax);
}

}  // namespace
}  // namespace nibble::quant::q4_1
