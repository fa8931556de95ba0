// Q2_K scalar reference dequantizer (ggml's dequantize_row_q2_K semantics, @d99724f).
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q2_k/q2_k.h"

namespace nibble::quant::q2_k {

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    const float d = F16ToF32(blk.d);
    const float dmin = F16ToF32(blk.dmin);
    float* y = out + b * kBlockElems;
    for (uint32_t e = 0; e < kBlockElems; ++e) {
      const uint32_t h = e / 128, j = (e % 128) / 32, l = e % 32;
      const uint8_t sc = blk.scales[e / 16];
      const int q = (blk.qs[32 * h + l] >> (2 * j)) & 3;
      // Products are exact in f32 (11 + 4 + 2 bits): only the subtraction rounds.
      const float scale = d * static_cast<float>(sc & 0xF);
      const float min = dmin * static_cast<float>(sc >> 4);
      y[e] = scale * static_cast<float>(q) - min;
    }
  }
}

}  // namespace nibble::quant::q2_k
