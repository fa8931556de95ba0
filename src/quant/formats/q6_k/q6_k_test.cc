// Q6_K layout test: a packer written from the byte layout in q6_k.h, fed random 6-bit
// codes and int8 scales, must decode to (d*scale)*(q - 32) (reference: that formula;
// exact, every product is exact in f32).
#include "quant/formats/q6_k/q6_k.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/float_convert.h"

namespace nibble::quant::q6_k {
namespace {

TEST(Q6_KFormat, PackedFieldsDecodeToTheFormula) {
  std::mt19937 rng(61);
  for (int trial = 0; trial < 8; ++trial) {
    int q[256];
    for (int& v : q) v = static_cast<int>(rng() % 64);
    Block blk;
    std::memset(&blk, 0, sizeof(blk));
    for (int8_t& s : blk.scales) s = static_cast<int8_t>(rng() % 256 - 128);
    blk.d = F32ToF16(0.0003f * static_cast<float>(trial + 1));
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      // Quarter k: low nibble of ql[64h + 32k + l] for k < 2, else the high nibble of
      // ql[64h + 32(k-2) + l]; bits 2k..2k+1 of qh[32h + l] hold the top two bits.
      const int ql_index = 64 * h + 32 * (k % 2) + l;
      blk.ql[ql_index] |= static_cast<uint8_t>((q[e] & 0xF) << (k < 2 ? 0 : 4));
      blk.qh[32 * h + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * k));
    }
    float out[256];
    DequantizeRef(&blk, out, 256);
    const float d = F16ToF32(blk.d);
    for (int e = 0; e < 256; ++e)
      ASSERT_EQ(out[e], (d * blk.scales[e / 16]) * (q[e] - kCodeOffset)) << "trial " << trial << " element " << e;
  }
}

}  // namespace
}  // namespace nibble::quant::q6_k
