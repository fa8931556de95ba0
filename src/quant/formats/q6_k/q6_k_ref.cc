// Q6_K scalar reference dequantizer (ggml's dequantize_row_q6_K semantics, @d99724f).
#include <cstring>

#include "core/float_convert.h"
#include "quant/formats/q6_k/q6_k.h"

namespace nibble::quant::q6_k {

void DequantizeRef(const void* blocks, float* out, int64_t num_elems) noexcept {
  const auto* bytes = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < num_elems / kBlockElems; ++b) {
    Block blk;
    std::memcpy(&blk, bytes + b * sizeof(Block), sizeof(Block));
    const float d = F16ToF32(blk.d);
    float* y = out + b * kBlockElems;
    for (uint32_t e = 0; e < kBlockElems; ++e) {
      const uint32_t h = e / 128, k = (e % 128) / 32, l = e % 32;
      // k = 0, 1 read low nibbles of ql[64h + 32k + l]; k = 2, 3 the high nibbles of
      // ql[64h + 32(k-2) + l].
      const uint8_t lo_byte = blk.ql[64 * h + 32 * (k % 2) + l];
      const int low4 = k < 2 ? (lo_byte & 0xF) : (lo_byte >> 4);
      const int high2 = (blk.qh[32 * h + l] >> (2 * k)) & 3;
      const int q = (low4 | (high2 << 4)) - kCodeOffset;
      // Both products are exact in f32 (11 + 7 + 5 significant bits).
      const float scale = d * static_cast<float>(blk.scales[e / 16]);
      y[e] = scale * static_cast<float>(q);
    }
  }
}

}  // namespace nibble::quant::q6_k
