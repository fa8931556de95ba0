// The exact int8 dot products of LLM.int8() through vpdpbusd (AVX512-VNNI): vpdpbusd
// multiplies unsigned by signed bytes, so the activation codes enter as |a| and their
// signs move onto the weight codes (b -> -b where a < 0, exact because codes lie in
// -127..127: spec §5.1, and the reader refuses -128). Four products per 32-bit lane per
// instruction, accumulated exactly in int32 (|Acc| <= 127^2 K). Highway 1.0.3 emits no
// VNNI, so this file uses intrinsics under a target attribute (C7); MatMul calls it only
// after CpuHasAvx512Vnni().
#include <cstddef>
#include <cstdint>

#include "quant/llm_int8/llm_int8.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define NB_AVX512VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

namespace nibble::quant::llm_int8::detail {

NB_AVX512VNNI_TARGET void Int8DotRowsVnni(const uint8_t* abs_a, const uint64_t* neg, const int8_t* cb, int64_t K,
                                          int32_t* acc, int64_t n0, int64_t n1) noexcept {
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* b = cb + n * K;
    __m512i s0 = zero, s1 = zero;
    int64_t k = 0;
    for (; k + 128 <= K; k += 128) {
      const __m512i b0 = _mm512_loadu_si512(b + k), b1 = _mm512_loadu_si512(b + k + 64);
      s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(abs_a + k), _mm512_mask_sub_epi8(b0, neg[k / 64], zero, b0));
      s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(abs_a + k + 64),
                               _mm512_mask_sub_epi8(b1, neg[k / 64 + 1], zero, b1));
    }
    for (; k < K; k += 64) {
      const __mmask64 m = K - k >= 64 ? ~__mmask64{0} : ((__mmask64{1} << (K - k)) - 1);
      const __m512i bk = _mm512_maskz_loadu_epi8(m, b + k);
      s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, abs_a + k), _mm512_mask_sub_epi8(bk, neg[k / 64], zero, bk));
    }
    alignas(64) int32_t t[16];
    _mm512_store_si512(t, _mm512_add_epi32(s0, s1));
    int32_t sum = 0;
    for (int32_t v : t) sum += v;
    acc[n] = sum;
  }
}

}  // namespace nibble::quant::llm_int8::detail
#endif  // __x86_64__
