// Q5_1 format tests: the fifth bit and the min, and a quantize round trip on the grid
// (reference: the layout in q5_1.h and ggml's quantize_row_q5_1_ref; exact).
#include "quant/formats/q5_1/q5_1.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/float_convert.h"

namespace nibble::quant::q5_1 {
namespace {

TEST(Q5_1Format, HighBitOfElementJIsBitJOfQh) {
  for (int e = 0; e < 32; ++e) {
    Block blk;
    blk.d = F32ToF16(0.5f);
    blk.m = F32ToF16(-2.0f);
    std::memset(blk.qs, 0x11, sizeof(blk.qs));  // low bits 1 everywhere
    const uint32_t qh = 1u << e;
    std::memcpy(blk.qh, &qh, sizeof(qh));
    float out[32];
    DequantizeRef(&blk, out, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], (i == e ? 17 : 1) * 0.5f - 2.0f) << e << " " << i;
  }
}

TEST(Q5_1Format, GridValuesSurviveExactly) {
  // min -8, max 7.5: d = 0.5 exactly; x = -8 + k/2 for k = 0..31 are all grid values.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = -8.0f + 0.5f * static_cast<float>((j * 7) % 32);
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(F16ToF32(blk.d), 0.5f);
  EXPECT_EQ(F16ToF32(blk.m), -8.0f);
  float y[32];
  DequantizeRef(&blk, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
}

}  // namespace
}  // namespace nibble::quant::q5_1
