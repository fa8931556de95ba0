// Q4_0 format tests: nibble order and code decoding, the sign convention of d (reference:
// the layout in q4_0.h and ggml's quantize_row_q4_0_ref; tolerance exact).
#include "quant/formats/q4_0/q4_0.h"

#include <gtest/gtest.h>

#include "core/float_convert.h"

namespace nibble::quant::q4_0 {
namespace {

TEST(Q4_0Format, LowNibblesAreTheFirstHalf) {
  Block blk;
  blk.d = F32ToF16(0.25f);
  for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  DequantizeRef(&blk, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (j - 8) * 0.25f) << j;
    EXPECT_EQ(out[j + 16], (15 - j - 8) * 0.25f) << j;
  }
}

TEST(Q4_0Format, LargestMagnitudeGetsCodeZero) {
  // max |x| is the negative -3: d = 3/8 > 0 and -3 decodes exactly as -8*d.
  float x[32] = {};
  x[5] = -3.0f;
  x[6] = 2.0f;
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(F16ToF32(blk.d), 0.375f);
  EXPECT_EQ(blk.qs[5] & 0xF, 0);
  float y[32];
  DequantizeRef(&blk, y, 32);
  EXPECT_EQ(y[5], -3.0f);
  // With a positive max the scale is negative: code 0 is then the top of the grid.
  x[5] = 4.0f;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(F16ToF32(blk.d), -0.5f);
  DequantizeRef(&blk, y, 32);
  EXPECT_EQ(y[5], 4.0f);
  EXPECT_EQ(y[6], 2.0f);
}

}  // namespace
}  // namespace nibble::quant::q4_0
