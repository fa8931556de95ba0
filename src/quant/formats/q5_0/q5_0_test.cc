// Q5_0 format tests: where the fifth bit of each code lives, and a quantize round trip on
// the grid (reference: the layout in q5_0.h and ggml's quantize_row_q5_0_ref; exact).
#include "quant/formats/q5_0/q5_0.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/float_convert.h"

namespace nibble::quant::q5_0 {
namespace {

TEST(Q5_0Format, HighBitOfElementJIsBitJOfQh) {
  for (int e = 0; e < 32; ++e) {
    Block blk;
    blk.d = F32ToF16(1.0f);
    std::memset(blk.qs, 0x33, sizeof(blk.qs));  // low bits 3 everywhere
    const uint32_t qh = 1u << e;
    std::memcpy(blk.qh, &qh, sizeof(qh));
    float out[32];
    DequantizeRef(&blk, out, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], i == e ? 19 - 16 : 3 - 16) << e << " " << i;
  }
}

TEST(Q5_0Format, GridValuesSurviveExactly) {
  // max |x| = 16 (negative) -> d = 1; every integer in [-16, 15] is a grid value.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(F16ToF32(blk.d), 1.0f);
  float y[32];
  DequantizeRef(&blk, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
}

}  // namespace
}  // namespace nibble::quant::q5_0
