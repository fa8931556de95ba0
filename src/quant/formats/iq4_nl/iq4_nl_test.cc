// IQ4_NL format tests: codebook decoding, recovering codebook-valued blocks, the zero
// block (reference: the layout and codebook in iq4_nl.h, ggml's quantize_row_iq4_nl_ref;
// exact).
#include "quant/formats/iq4_nl/iq4_nl.h"

#include <gtest/gtest.h>

#include "core/float_convert.h"

namespace nibble::quant::iq4_nl {
namespace {

TEST(Iq4NlFormat, DecodesEveryCodebookEntry) {
  Block blk;
  blk.d = F32ToF16(-0.5f);
  for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  DequantizeRef(&blk, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], -0.5f * kCodebook[j]) << j;
    EXPECT_EQ(out[j + 16], -0.5f * kCodebook[15 - j]) << j;
  }
}

TEST(Iq4NlFormat, CodebookValuedBlockIsRecovered) {
  // x = s * codebook[c_j] with the -127 entry present: the first guess d0 = s hits every
  // code, and the least-squares refit returns s (0.25 is exact in f16).
  constexpr float kS = 0.25f;
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = kS * kCodebook[(j * 5) % 16];
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(F16ToF32(blk.d), kS);
  float y[32];
  DequantizeRef(&blk, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
}

TEST(Iq4NlFormat, ZeroBlockHasZeroScale) {
  const float x[32] = {};
  Block blk;
  QuantizeRef(x, &blk, 32);
  EXPECT_EQ(blk.d, 0);
  for (uint8_t q : blk.qs) EXPECT_EQ(q, 0x88);
}

}  // namespace
}  // namespace nibble::quant::iq4_nl
