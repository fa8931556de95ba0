// Q2_K layout test: a packer written from the byte layout in q2_k.h, fed random codes,
// scales and mins, must decode to (d*sc)*q - dmin*m (reference: that formula; exact,
// every product is exact in f32).
#include "quant/formats/q2_k/q2_k.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/float_convert.h"

namespace nibble::quant::q2_k {
namespace {

TEST(Q2_KFormat, PackedFieldsDecodeToTheFormula) {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 8; ++trial) {
    int q[256], sc[16], m[16];
    for (int& v : q) v = static_cast<int>(rng() % 4);
    for (int s = 0; s < 16; ++s) {
      sc[s] = static_cast<int>(rng() % 16);
      m[s] = static_cast<int>(rng() % 16);
    }
    Block blk;
    std::memset(&blk, 0, sizeof(blk));
    blk.d = F32ToF16(0.01f * static_cast<float>(trial + 1));
    blk.dmin = F32ToF16(-0.003f * static_cast<float>(trial + 1));
    for (int s = 0; s < 16; ++s) blk.scales[s] = static_cast<uint8_t>(sc[s] | (m[s] << 4));
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) blk.qs[32 * h + l] |= static_cast<uint8_t>(q[128 * h + 32 * j + l] << (2 * j));
    float out[256];
    DequantizeRef(&blk, out, 256);
    const float d = F16ToF32(blk.d), dmin = F16ToF32(blk.dmin);
    for (int e = 0; e < 256; ++e)
      ASSERT_EQ(out[e], (d * sc[e / 16]) * q[e] - dmin * m[e / 16]) << "trial " << trial << " element " << e;
  }
}

}  // namespace
}  // namespace nibble::quant::q2_k
