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

#include "kernels/avx512_sum_lanes.h"

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

// kR rows per pass: each activation load serves kR rows and kR code streams are in
// flight (the weights stream from DRAM).
template <size_t kR>
NB_AVX512BF16_TARGET inline void Rows(__m512 lut, const uint8_t* const* codes, const float* const* s,
                                      const uint16_t* xe, const uint16_t* xo, size_t bpr, float* y,
                                      const uint8_t* next) {
  __m512 acc[kR];
  for (size_t r = 0; r < kR; ++r) acc[r] = _mm512_setzero_ps();
  for (size_t b = 0; b < bpr; ++b) {
    const __m512i x0 = _mm512_loadu_si512(xe + b * 32), x1 = _mm512_loadu_si512(xo + b * 32);
    for (size_t r = 0; r < kR; ++r) {
      // The same bytes of the next pass's row r into L2, one row set ahead (four row
      // streams 7 KB apart outrun the hardware prefetcher; bench/RESULTS.md).
      if (next != nullptr && b % 2 == 0)
        _mm_prefetch(reinterpret_cast<const char*>(next + r * bpr * 32 + b * 32), _MM_HINT_T1);
      const __m512i table = BlockTable(lut, s[r][b]);
      const __mmask32 all32 = ~__mmask32{0};
      const __m512i v =
          _mm512_maskz_cvtepu8_epi16(all32, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes[r] + b * 32)));
      const __m512i we = _mm512_maskz_permutexvar_epi16(all32, _mm512_maskz_srli_epi16(all32, v, 4), table);
      const __m512i wo = _mm512_maskz_permutexvar_epi16(all32, _mm512_and_si512(v, _mm512_set1_epi16(0xF)), table);
      acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)we, (__m512bh)x0);
      acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)wo, (__m512bh)x1);
    }
  }
  for (size_t r = 0; r < kR; ++r) y[r] = kernels::SumLanes512(acc[r]);
}

}  // namespace

NB_AVX512BF16_TARGET void Gemv4RowsBf16Avx512(const QTensor* w, const uint16_t* xe, const uint16_t* xo, float* y,
                                              int64_t n0, int64_t n1, float* scale_buf) noexcept {
  const auto K = static_cast<size_t>(w->cols());
  const size_t bpr = K / 64;  // blocks per row (blocksize 64, K % 64 == 0: the caller checked)
  const __m512 lut = _mm512_loadu_ps(w->format->lut);
  constexpr size_t kR = 4;
  const uint8_t* codes[kR];
  const float* s[kR];
  auto setup = [&](int64_t n, size_t r) {
    if (!w->nested) {
      s[r] = w->scales.data() + static_cast<size_t>(n) * bpr;
    } else {  // scale_buf: kR rows of reconstructed absmax
      w->BlockScales(n * static_cast<int64_t>(bpr), (n + 1) * static_cast<int64_t>(bpr), scale_buf + r * bpr);
      s[r] = scale_buf + r * bpr;
    }
    codes[r] = w->codes.data() + static_cast<size_t>(n) * K / 2;
  };
  int64_t n = n0;
  for (; n + static_cast<int64_t>(kR) <= n1; n += kR) {
    for (size_t r = 0; r < kR; ++r) setup(n + static_cast<int64_t>(r), r);
    const uint8_t* next = n + 2 * static_cast<int64_t>(kR) <= n1 ? codes[0] + kR * K / 2 : nullptr;
    Rows<kR>(lut, codes, s, xe, xo, bpr, y + n, next);
  }
  for (; n < n1; ++n) {
    setup(n, 0);
    Rows<1>(lut, codes, s, xe, xo, bpr, y + n, nullptr);
  }
}

}  // namespace nibble::quant::detail
#endif  // __x86_64__
