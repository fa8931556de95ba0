// The int8-activation 4-bit GEMV on AVX2 (no VNNI): llama.cpp's AVX2 Q4_0 x Q8_0 dot,
// with the format's table in place of "code - 8".
// Per 64-column block of a row (32 code bytes, one load): the high nibbles are the even
// elements, the low nibbles the odd ones; vpshufb looks each nibble up in the 16-byte
// int8 table T (duplicated in both 128-bit lanes). vpmaddubsw multiplies unsigned by
// signed bytes, so the activations enter as |q| and their signs move onto the weights
// (vpsignb: T·sign(q), zero where q = 0); each int16 pair sum is at most 2·127·127 =
// 32258, below vpmaddubsw's saturation at 32767, so it is exact. vpmaddwd by ones widens
// the pairs to int32, and one vcvtdq2ps + FMA scales the block's 8 lane sums by
// absmax · (d / mult): the same integers as the Ref, with the f32 rounding of partial
// sums (smaller than the VNNI kernel's, which carries a +128 offset; qgemv4_i8_test.cc).
// Intrinsics under a target attribute (C7): Highway 1.0.3 has no u8 x i8 pair multiply.
// QGemv4I8 calls this only after CpuHasAvx2Fma().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/qgemv4_i8.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define NB_AVX2_TARGET __attribute__((target("avx2,fma")))

namespace nibble::quant::detail {
namespace {

constexpr size_t kR = 4;       // rows per pass of the GEMV
constexpr size_t kTokens = 4;  // tokens per tile of the prompt path

NB_AVX2_TARGET inline float SumLanes256(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// One row's 64 weights of block b as signed int8: even (high nibbles) and odd elements.
NB_AVX2_TARGET inline void Decode(__m256i table, const uint8_t* c, __m256i* even, __m256i* odd) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
  *even = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
  *odd = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low4));
}

// The exact int32 lane sums of one block: Σ T·q over the even and odd elements.
NB_AVX2_TARGET inline __m256i BlockDot(__m256i we, __m256i wo, const int8_t* xa) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i qe = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa));
  const __m256i qo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa + 32));
  const __m256i ae = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa + 64));
  const __m256i ao = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa + 96));
  const __m256i pe = _mm256_maddubs_epi16(ae, _mm256_sign_epi8(we, qe));
  const __m256i po = _mm256_maddubs_epi16(ao, _mm256_sign_epi8(wo, qo));
  return _mm256_add_epi32(_mm256_madd_epi16(pe, ones), _mm256_madd_epi16(po, ones));
}

// R rows x T tokens: each row's block is decoded once for T tokens, each activation load
// serves R rows. Per (row, token) the operations and their order do not depend on R or T,
// so every tile shape gives the same bits as one row and one token at a time.
// y[t * ldy + r]. next: the next pass's first row (prefetched into L2) or null.
template <size_t R, size_t T>
NB_AVX2_TARGET inline void Tile(__m256i table, const uint8_t* const* codes, const float* const* s,
                                const Avx2Activations* a, size_t bpr, float* y, size_t ldy, const uint8_t* next) {
  __m256 acc[R][T];
  for (size_t r = 0; r < R; ++r)
    for (size_t t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  for (size_t b = 0; b < bpr; ++b) {
    __m256i we[R], wo[R];
    for (size_t r = 0; r < R; ++r) {
      if (next != nullptr && b % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(next + r * bpr * 32 + b * 32), _MM_HINT_T1);
      Decode(table, codes[r] + b * 32, &we[r], &wo[r]);
    }
    for (size_t t = 0; t < T; ++t) {
      const int8_t* xa = a[t].xa.data() + b * 128;
      const float sa = a[t].sa[b];
      for (size_t r = 0; r < R; ++r) {
        const __m256 dot = _mm256_cvtepi32_ps(BlockDot(we[r], wo[r], xa));
        acc[r][t] = _mm256_fmadd_ps(dot, _mm256_set1_ps(s[r][b] * sa), acc[r][t]);
      }
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t t = 0; t < T; ++t) y[t * ldy + r] = SumLanes256(acc[r][t]);
}

}  // namespace

NB_AVX2_TARGET void Gemv4I8RowsAvx2(const QTensor* w, const Int8Table& table, const Avx2Activations* act, int64_t M,
                                    float* y, int64_t n0, int64_t n1, float* scale_buf) noexcept {
  const auto K = static_cast<size_t>(w->cols()), N = static_cast<size_t>(w->rows());
  const size_t bpr = K / 64;
  alignas(16) int8_t t16[16];
  for (size_t c = 0; c < 16; ++c) t16[c] = table.t[c];
  const __m128i t128 = _mm_load_si128(reinterpret_cast<const __m128i*>(t16));
  const __m256i tab = _mm256_set_m128i(t128, t128);
  const uint8_t* codes[kR];
  const float* s[kR];
  // Per 64-column block of a row, the absmax of the weight block holding it.
  const auto B = static_cast<size_t>(w->blocksize), wpr = K / B, per = B / 64;
  std::vector<float> row_scales(per > 1 ? wpr : 0);
  auto setup = [&](int64_t n, size_t r) {
    if (!w->nested && per == 1) {
      s[r] = w->scales.data() + static_cast<size_t>(n) * bpr;
    } else if (per == 1) {  // scale_buf: kR rows of reconstructed absmax
      w->BlockScales(n * static_cast<int64_t>(bpr), (n + 1) * static_cast<int64_t>(bpr), scale_buf + r * bpr);
      s[r] = scale_buf + r * bpr;
    } else {  // blocksize 128, 256, ...: each absmax repeated for its B/64 column blocks
      w->BlockScales(n * static_cast<int64_t>(wpr), (n + 1) * static_cast<int64_t>(wpr), row_scales.data());
      float* dst = scale_buf + r * bpr;
      for (size_t j = 0; j < bpr; ++j) dst[j] = row_scales[j / per];
      s[r] = dst;
    }
    codes[r] = w->codes.data() + static_cast<size_t>(n) * K / 2;
  };
  int64_t n = n0;
  if (M >= static_cast<int64_t>(kTokens)) {  // prompts: 2 rows x 4 tokens per tile
    constexpr size_t kRows = 2;
    for (; n < n1; n += kRows) {
      const size_t rows = std::min<size_t>(kRows, static_cast<size_t>(n1 - n));
      for (size_t r = 0; r < rows; ++r) setup(n + static_cast<int64_t>(r), r);
      int64_t m = 0;
      for (; m + static_cast<int64_t>(kTokens) <= M; m += kTokens) {
        if (rows == kRows) {
          Tile<kRows, kTokens>(tab, codes, s, act + m, bpr, y + m * N + n, N, nullptr);
        } else {
          Tile<1, kTokens>(tab, codes, s, act + m, bpr, y + m * N + n, N, nullptr);
        }
      }
      for (; m < M; ++m) {
        if (rows == kRows) {
          Tile<kRows, 1>(tab, codes, s, act + m, bpr, y + m * N + n, N, nullptr);
        } else {
          Tile<1, 1>(tab, codes, s, act + m, bpr, y + m * N + n, N, nullptr);
        }
      }
    }
    return;
  }
  for (; n + static_cast<int64_t>(kR) <= n1; n += kR) {
    for (size_t r = 0; r < kR; ++r) setup(n + static_cast<int64_t>(r), r);
    // The next pass's rows follow these contiguously (codes are row-major).
    const uint8_t* next = n + 2 * static_cast<int64_t>(kR) <= n1 ? codes[0] + kR * K / 2 : nullptr;
    for (int64_t m = 0; m < M; ++m) Tile<kR, 1>(tab, codes, s, act + m, bpr, y + m * N + n, N, m == 0 ? next : nullptr);
  }
  for (; n < n1; ++n) {
    setup(n, 0);
    for (int64_t m = 0; m < M; ++m) Tile<1, 1>(tab, codes, s, act + m, bpr, y + m * N + n, N, nullptr);
  }
}

}  // namespace nibble::quant::detail
#endif  // __x86_64__
