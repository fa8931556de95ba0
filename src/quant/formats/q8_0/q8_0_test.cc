// Q8_0 format tests: code decoding, roundf ties and the zero block (reference: the
// layout in q8_0.h and ggml's quantize_row_q8_0_ref; tolerance exact).
#include "quant/formats/q8_0/q8_0.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/float_convert.h"

namespace nibble::quant::q8_0 {
namespace {

TEST(Q8_0Format, DecodesEveryCodeAtItsPosition) {
  // 8 blocks x 32 codes = all 256 int8 values, scale 0.5: value = code / 2, exact.
  std::vector<Block> blocks(8);
  for (int b = 0; b < 8; ++b) {
    blocks[b].d = F32ToF16(0.5f);
    for (int j = 0; j < 32; ++j) blocks[b].qs[j] = static_cast<int8_t>(b * 32 + j - 128);
  }
  std::vector<float> out(256);
  DequantizeRef(blocks.data(), out.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], (i - 128) * 0.5f) << i;
}

TEST(Q8_0Format, QuantizeRoundsTiesAwayFromZero) {
  // amax = 127 makes d = 1 and x/d exact, so the .5 values are true ties.
  float x[32] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.49f, -126.5f};
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(F16ToF32(blk.d), 1.0f);
  const int8_t want[7] = {127, 3, -3, 1, -1, 1, -127};
  for (int j = 0; j < 7; ++j) EXPECT_EQ(blk.qs[j], want[j]) << j;
  for (int j = 7; j < 32; ++j) EXPECT_EQ(blk.qs[j], 0) << j;
}

TEST(Q8_0Format, ZeroBlockHasZeroScale) {
  const float x[32] = {};
  Block blk;
  std::memset(&blk, 0xAB, sizeof(blk));
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(blk.d, 0);
  for (int8_t q : blk.qs) EXPECT_EQ(q, 0);
}

}  // namespace
}  // namespace nibble::quant::q8_0
