// The exact int8 dot products of LLM.int8() on AVX2 (no VNNI), as llama.cpp's AVX2
// Q8_0 dot does: vpmaddubsw multiplies unsigned by signed bytes, so the activation codes
// enter as |a| and their signs move onto the weight codes (vpsignb: b·sign(a), zero where
// a = 0). Codes lie in -127..127 (spec §5.1; the reader refuses -128), so each int16 pair
// sum is at most 2·127·127 = 32258 < 32767: vpmaddubsw never saturates. vpmaddwd by ones
// widens the pairs to int32; the int32 lanes are exact for |Acc| <= 127² K < 2^31.
// Intrinsics under a target attribute (C7); MatMul calls this only after CpuHasAvx2Fma().
#include <cstddef>
#include <cstdint>

#include "quant/llm_int8/llm_int8.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define NB_AVX2_TARGET __attribute__((target("avx2,fma")))

namespace nibble::quant::llm_int8::detail {
namespace {

NB_AVX2_TARGET inline int32_t SumLanes(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
}

// kR rows at once: each activation load serves kR rows.
template <int64_t kR>
NB_AVX2_TARGET inline void Rows(const int8_t* a, const uint8_t* abs_a, const int8_t* cb, int64_t K, int32_t* acc,
                                int64_t n) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s[kR];
  for (int64_t r = 0; r < kR; ++r) s[r] = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k));
    const __m256i ua = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(abs_a + k));
    for (int64_t r = 0; r < kR; ++r) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + (n + r) * K + k));
      s[r] = _mm256_add_epi32(s[r], _mm256_madd_epi16(_mm256_maddubs_epi16(ua, _mm256_sign_epi8(b, va)), ones));
    }
  }
  for (int64_t r = 0; r < kR; ++r) {
    int32_t sum = SumLanes(s[r]);
    for (int64_t kk = k; kk < K; ++kk) sum += int32_t{a[kk]} * int32_t{cb[(n + r) * K + kk]};
    acc[n + r] = sum;
  }
}

}  // namespace

NB_AVX2_TARGET void Int8DotRowsAvx2(const int8_t* a, const uint8_t* abs_a, const int8_t* cb, int64_t K, int32_t* acc,
                                    int64_t n0, int64_t n1) noexcept {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) Rows<4>(a, abs_a, cb, K, acc, n);
  for (; n < n1; ++n) Rows<1>(a, abs_a, cb, K, acc, n);
}

}  // namespace nibble::quant::llm_int8::detail
#endif  // __x86_64__
