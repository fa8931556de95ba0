// Q3_K scalar reference dequantizer (ggml's dequantize_row_q3_K semantics, @d99724f).
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q3_k/q3_k.h"

namespace nibble::quant::q3_k {

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    const float d = F16ToF32(blk.d);
    float* y = out + b * kBlockElems;
    for (uint32_t e = 0; e < kBlockElems; ++e) {
      const uint32_t h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int low2 = (blk.qs[32 * h + l] >> (2 * j)) & 3;
      const bool high = (blk.hmask[l] >> (4 * h + j)) & 1;
      const int q = low2 - (high ? 0 : 4);
      // Both products are exact in f32 (11 + 6 + 3 bits).
      const float scale = d * static_cast<float>(UnpackScale(blk.scales, static_cast<int>(e / 16)));
      y[e] = scale * static_cast<float>(q);
    }
  }
}

}  // namespace nibble::quant::q3_k
