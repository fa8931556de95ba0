// Q4_K scalar reference dequantizer (ggml's dequantize_row_q4_K semantics, @d99724f).
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q4_k/q4_k.h"

namespace nibble::quant::q4_k {

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
      UnpackScaleMin(blk.scales, 2 * c, &sc_lo, &m_lo);
      UnpackScaleMin(blk.scales, 2 * c + 1, &sc_hi, &m_hi);
      // Every product here is exact in f32 (11 + 6 + 4 bits), so only the final
      // subtraction rounds.
      const float d_lo = d * sc_lo, min_lo = dmin * m_lo;
      const float d_hi = d * sc_hi, min_hi = dmin * m_hi;
      const uint8_t* q = blk.qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        y[64 * c + l] = d_lo * static_cast<float>(q[l] & 0xF) - min_lo;
        y[64 * c + 32 + l] = d_hi * static_cast<float>(q[l] >> 4) - min_hi;
      }
    }
  }
}

}  // namespace nibble::quant::q4_k
