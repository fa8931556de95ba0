// Q5_K scalar reference dequantizer (ggml's dequantize_row_q5_K semantics, @d99724f).
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q4_k/q4_k.h"
#include "quant/formats/q5_k/q5_k.h"

namespace nibble::quant::q5_k {

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    const float d = F16ToF32(blk.d);
    const float dmin = F16ToF32(blk.dmin);
    float* y = out + b * kBlockElems;
    for (int c = 0; c < 4; ++c) {  // chunk of 64 values = sub-blocks 2c and 2c+1
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      q4_k::UnpackScaleMin(blk.scales, 2 * c, &sc_lo, &m_lo);
      q4_k::UnpackScaleMin(blk.scales, 2 * c + 1, &sc_hi, &m_hi);
      // Products are exact in f32 (11 + 6 + 5 bits): only the subtraction rounds.
      const float d_lo = d * sc_lo, min_lo = dmin * m_lo;
      const float d_hi = d * sc_hi, min_hi = dmin * m_hi;
      const uint8_t* q = blk.qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        const int q_lo = (q[l] & 0xF) | (((blk.qh[l] >> (2 * c)) & 1) << 4);
        const int q_hi = (q[l] >> 4) | (((blk.qh[l] >> (2 * c + 1)) & 1) << 4);
        y[64 * c + l] = d_lo * static_cast<float>(q_lo) - min_lo;
        y[64 * c + 32 + l] = d_hi * static_cast<float>(q_hi) - min_hi;
      }
    }
  }
}

}  // namespace nibble::quant::q5_k
