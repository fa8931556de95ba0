// Q5_K layout test: a packer written from the byte layout in q5_k.h, fed random 5-bit
// codes and 6-bit scales/mins, must decode to (d*sc)*q - dmin*m (reference: that formula;
// exact, every product is exact in f32).
#include "quant/formats/q5_k/q5_k.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/float_convert.h"
#include "quant/formats/q4_k/q4_k.h"

namespace nibble::quant::q5_k {
namespace {

TEST(Q5_KFormat, PackedFieldsDecodeToTheFormula) {
  std::mt19937 rng(51);
  for (int trial = 0; trial < 8; ++trial) {
    int q[256], sc[8], m[8];
    for (int& v : q) v = static_cast<int>(rng() % 32);
    for (int s = 0; s < 8; ++s) {
      sc[s] = static_cast<int>(rng() % 64);
      m[s] = static_cast<int>(rng() % 64);
    }
    Block blk;
    std::memset(&blk, 0, sizeof(blk));
    blk.d = F32ToF16(0.001f * static_cast<float>(trial + 1));
    blk.dmin = F32ToF16(0.0005f * static_cast<float>(trial + 1));
    for (int s = 0; s < 4; ++s) {  // the Q4_K packing of scales and mins
      blk.scales[s] = static_cast<uint8_t>(sc[s] | ((sc[s + 4] >> 4) << 6));
      blk.scales[s + 4] = static_cast<uint8_t>(m[s] | ((m[s + 4] >> 4) << 6));
      blk.scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 0xF) | ((m[s + 4] & 0xF) << 4));
    }
    for (int e = 0; e < 256; ++e) {
      const int s = e / 32, l = e % 32, c = e / 64;
      blk.qs[32 * c + l] |= static_cast<uint8_t>((q[e] & 0xF) << (s % 2 == 0 ? 0 : 4));
      blk.qh[l] |= static_cast<uint8_t>((q[e] >> 4) << s);
    }
    float out[256];
    DequantizeRef(&blk, out, 256);
    const float d = F16ToF32(blk.d), dmin = F16ToF32(blk.dmin);
    for (int e = 0; e < 256; ++e)
      ASSERT_EQ(out[e], (d * sc[e / 32]) * q[e] - dmin * m[e / 32]) << "trial " << trial << " element " << e;
  }
}

}  // namespace
}  // namespace nibble::quant::q5_k
