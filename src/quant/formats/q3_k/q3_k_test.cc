// Q3_K layout test: a packer written from the byte layout in q3_k.h, fed random signed
// codes and scales, must decode to (d*scale)*q (reference: that formula; exact, every
// product is exact in f32).
#include "quant/formats/q3_k/q3_k.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/float_convert.h"

namespace nibble::quant::q3_k {
namespace {

TEST(Q3_KFormat, PackedFieldsDecodeToTheFormula) {
  std::mt19937 rng(31);
  for (int trial = 0; trial < 8; ++trial) {
    int q[256], scale[16];
    for (int& v : q) v = static_cast<int>(rng() % 8) - 4;          // [-4, 3]
    for (int& v : scale) v = static_cast<int>(rng() % 64) - 32;  // [-32, 31]
    Block blk;
    std::memset(&blk, 0, sizeof(blk));
    blk.d = F32ToF16(0.02f * static_cast<float>(trial + 1));
    for (int s = 0; s < 16; ++s) {
      const int stored = scale[s] + kScaleOffset;
      if (s < 8) {
        blk.scales[s] |= static_cast<uint8_t>(stored & 0xF);
      } else {
        blk.scales[s - 8] |= static_cast<uint8_t>((stored & 0xF) << 4);
      }
      blk.scales[8 + s % 4] |= static_cast<uint8_t>((stored >> 4) << (2 * (s / 4)));
    }
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int stored = q[e] + 4;  // [0, 7]: low 2 bits in qs, "no offset" bit in hmask
      blk.qs[32 * h + l] |= static_cast<uint8_t>((stored & 3) << (2 * j));
      blk.hmask[l] |= static_cast<uint8_t>((stored >> 2) << (4 * h + j));
    }
    float out[256];
    DequantizeRef(&blk, out, 256);
    const float d = F16ToF32(blk.d);
    for (int e = 0; e < 256; ++e)
      ASSERT_EQ(out[e], (d * scale[e / 16]) * q[e]) << "trial " << trial << " element " << e;
  }
}

}  // namespace
}  // namespace nibble::quant::q3_k
