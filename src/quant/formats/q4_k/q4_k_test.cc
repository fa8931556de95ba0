// Q4_K layout test: a packer written from the byte layout in q4_k.h (and spec §4.7), fed
// random codes and 6-bit scales/mins, must decode to (d*sc)*q - dmin*m (reference: that
// formula; exact, every product is exact in f32).
#include "quant/formats/q4_k/q4_k.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/float_convert.h"

namespace nibble::quant::q4_k {
namespace {

// Packs 8 6-bit scales and mins as the header describes.
void PackScales(const int* sc, const int* m, uint8_t* scales) {
  std::memset(scales, 0, 12);
  for (int s = 0; s < 4; ++s) {
    scales[s] = static_cast<uint8_t>(sc[s] | ((sc[s + 4] >> 4) << 6));
    scales[s + 4] = static_cast<uint8_t>(m[s] | ((m[s + 4] >> 4) << 6));
    scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 0xF) | ((m[s + 4] & 0xF) << 4));
  }
}

TEST(Q4_KFormat, PackedFieldsDecodeToTheFormula) {
  std::mt19937 rng(41);
  for (int trial = 0; trial < 8; ++trial) {
    int q[256], sc[8], m[8];
    for (int& v : q) v = static_cast<int>(rng() % 16);
    for (int s = 0; s < 8; ++s) {
      sc[s] = static_cast<int>(rng() % 64);
      m[s] = static_cast<int>(rng() % 64);
    }
    Block blk;
    std::memset(&blk, 0, sizeof(blk));
    blk.d = F32ToF16(0.001f * static_cast<float>(trial + 1));
    blk.dmin = F32ToF16(0.0007f * static_cast<float>(trial + 1));
    PackScales(sc, m, blk.scales);
    for (int s = 0; s < 8; ++s) {
      uint8_t got_sc, got_m;
      UnpackScaleMin(blk.scales, s, &got_sc, &got_m);
      ASSERT_EQ(got_sc, sc[s]);
      ASSERT_EQ(got_m, m[s]);
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        blk.qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    float out[256];
    DequantizeRef(&blk, out, 256);
    const float d = F16ToF32(blk.d), dmin = F16ToF32(blk.dmin);
    for (int e = 0; e < 256; ++e)
      ASSERT_EQ(out[e], (d * sc[e / 32]) * q[e] - dmin * m[e / 32]) << "trial " << trial << " element " << e;
  }
}

}  // namespace
}  // namespace nibble::quant::q4_k
