// The 4-bit GEMV with bf16 compute through vdpbf16ps (AVX512-BF16): per block of 64 the
// 16 dequantized weights bf16(f32(lut[c] * absmax)) form a table in one register, one
// vpermw turns 32 codes into 32 bf16 weights, one vdpbf16ps multiplies them with 32
// bf16 activations (products exact in f32, f32 accumulation): bitsandbytes' semantics
// for bnb_4bit_compute_dtype=bfloat16 at ~1/3 of the f32 path's instructions. Highway
// 1.0.3 emits neither vpermw tables nor BF16 dots, so this file uses intrinsics under
// a per-function target attribute (C7); QGemv calls it only after HasAvx512Bf16().
#include <cstddef>
#include <cstdint>

#include "quant/qgemv.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define NB_AVX512BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace nibble::quant::detail {
namespace {

// The 16 f32 values of `lut16` times s, rounded to bf16 with RNE by integer arithmetic
// (vcvtneps2bf16 would flush subnormals), in the low 16 words of a zmm.
NB_AVX512BF16_TARGET inline __m512i BlockTable(__m512 lut16, float s) {
  const __m512i bits = _mm512_castps_si512(_mm512_mul_ps(lut16, _mm512_set1_ps(s)));
  // Masked forms throughout: the unmasked intrinsics pass an _mm512_undefined_* operand
  // that g++ 12 flags with -Wmaybe-uninitialized (GCC PR 105593).
  const __mmask16 all16 = 0xFFFF;
  const __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(all16, bits, 16), _mm512_set1_epi32(1));
  const __m512i sum = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __m256i words = _mm512_maskz_cvtepi32_epi16(all16, _mm512_maskz_srli_epi32(all16, sum, 16));
  return _mm512_castsi256_si512(words);  // upper words unused: indices are < 16
}

NB_AVX512BF16_TARGET inline float SumLanes(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (size_t w = 8; w >= 1; w /= 2)
    for (size_t i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}

// Two blocks of 64 per step into two accumulator pairs (vdpbf16ps latency).
NB_AVX512BF16_TARGET inline __m512 Block64(__m512 acc, __m512i table, const uint8_t* codes, const uint16_t* xe,
                                           const uint16_t* xo) {
  const __mmask32 all32 = ~__mmask32{0};
  const __m512i v = _mm512_maskz_cvtepu8_epi16(all32, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes)));
  const __m512i we = _mm512_maskz_permutexvar_epi16(all32, _mm512_maskz_srli_epi16(all32, v, 4), table);
  const __m512i wo = _mm512_maskz_permutexvar_epi16(all32, _mm512_and_si512(v, _mm512_set1_epi16(0xF)), table);
  acc = _mm512_dpbf16_ps(acc, (__m512bh)we, (__m512bh)_mm512_loadu_si512(xe));
  return _mm512_dpbf16_ps(acc, (__m512bh)wo, (__m512bh)_mm512_loadu_si512(xo));
}

}  // namespace

NB_AVX512BF16_TARGET void Gemv4RowsBf16Avx512(const QTensor* w, const uint16_t* xe, const uint16_t* xo, float* y,
                                              int64_t n0, int64_t n1, float* scale_buf) noexcept {
  const auto K = static_cast<size_t>(w->cols());
  const size_t bpr = K / 64;  // blocks per row (blocksize 64, K % 64 == 0: the caller checked)
  const __m512 lut = _mm512_loadu_ps(w->format->lut);
  for (int64_t n = n0; n < n1; ++n) {
    const float* s = w->scales.data() + static_cast<size_t>(n) * bpr;
    if (w->nested) {
      w->BlockScales(n * static_cast<int64_t>(bpr), (n + 1) * static_cast<int64_t>(bpr), scale_buf);
      s = scale_buf;
    }
    const uint8_t* codes = w->codes.data() + static_cast<size_t>(n) * K / 2;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= bpr; b += 2) {
      acc0 = Block64(acc0, BlockTable(lut, s[b]), codes + b * 32, xe + b * 32, xo + b * 32);
      acc1 = Block64(acc1, BlockTable(lut, s[b + 1]), codes + (b + 1) * 32, xe + (b + 1) * 32, xo + (b + 1) * 32);
    }
    if (b < bpr) acc0 = Block64(acc0, BlockTable(lut, s[b]), codes + b * 32, xe + b * 32, xo + b * 32);
    y[n] = SumLanes(_mm512_add_ps(acc0, acc1));
  }
}

}  // namespace nibble::quant::detail
#endif  // __x86_64__
