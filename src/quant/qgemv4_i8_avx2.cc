// The int8-activation 4-bit GEMV on AVX2 (no VNNI), after llama.cpp's AVX2 Q4_0 x Q8_0
// dot, with the format's table in place of "code - 8".
// Per 64-column block of a row (32 code bytes, one load): the high nibbles are the even
// elements, the low nibbles the odd ones; vpshufb looks each nibble up in the 16-byte
// int8 table T (duplicated in both 128-bit lanes).
//   GEMV (M < kPromptRows): vpmaddubsw multiplies unsigned by signed bytes, so the
//   activations enter as |q| and their signs move onto the weights (vpsignb: T·sign(q),
//   zero where q = 0); each int16 pair sum is at most 2·127·127 = 32258, below
//   vpmaddubsw's saturation at 32767, so it is exact; vpmaddwd by ones widens the pairs.
//   Prompts: a row's block is decoded once into int16 (vpmovsxbw) and reused for every
//   token of the tile, whose activations are stored as int16: four vpmaddwd per block and
//   no sign step, the fewest multiply-port operations per weight on AVX2.
// Both forms put the same products in the same int32 lane (lane i: code bytes 4i..4i+3,
// even and odd elements), so the lane sums are identical integers and the f32 steps that
// follow (vcvtdq2ps, times the block's absmax, FMA with d / mult, the lanes summed at
// the end) are the same: a prompt gives each token the bits of a one-token call. The
// integers equal the Ref's; the f32 rounding is of partial sums (smaller than the VNNI
// kernel's, which carries a +128 offset; qgemv4_i8_test.cc states the bound).
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
constexpr size_t kTokens = 6;  // tokens per prompt tile (one row: 6 accumulators, 4 weight registers)

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
// xa: the block's 128 bytes of the GEMV layout (LayoutForAvx2).
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

// One row's block as int16 in the prompt layout: w[0] / w[1] the even elements of code
// bytes {4i, 4i+1} / {4i+2, 4i+3} (i = 0..7), w[2] / w[3] the odd ones.
NB_AVX2_TARGET inline void Decode16(__m256i table, const uint8_t* c, __m256i* w) {
  // Within each 128-bit lane: bytes 4i, 4i+1 first, then 4i+2, 4i+3; then the qwords
  // ordered so the low half holds every {4i, 4i+1} pair and the high half the rest.
  const __m256i pos = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,  //
                                       0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i v = _mm256_permute4x64_epi64(
      _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)), pos), 0xD8);
  __m256i even, odd;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  even = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
  odd = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low4));
  w[0] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(even));
  w[1] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(even, 1));
  w[2] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(odd));
  w[3] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(odd, 1));
}

// The same lane sums as BlockDot from the int16 forms; x16: the block's 64 int16 of the
// prompt layout (LayoutForAvx2Prompt).
NB_AVX2_TARGET inline __m256i BlockDot16(const __m256i* w, const int16_t* x16) {
  const auto* x = reinterpret_cast<const __m256i*>(x16);
  const __m256i e = _mm256_add_epi32(_mm256_madd_epi16(w[0], _mm256_loadu_si256(x)),
                                     _mm256_madd_epi16(w[1], _mm256_loadu_si256(x + 1)));
  const __m256i o = _mm256_add_epi32(_mm256_madd_epi16(w[2], _mm256_loadu_si256(x + 2)),
                                     _mm256_madd_epi16(w[3], _mm256_loadu_si256(x + 3)));
  return _mm256_add_epi32(e, o);
}

// The f32 step shared by both forms: lane sums, times the row's absmax, FMA'd with the
// token's d / mult into the (row, token) accumulator.
NB_AVX2_TARGET inline __m256 Scale(__m256i dot, __m256 absmax, __m256 sa, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), absmax), sa, acc);
}

// GEMV: R rows of one token; each activation load serves R rows. next: the next pass's
// first row (prefetched into L2) or null. y[r].
template <size_t R>
NB_AVX2_TARGET inline void Rows(__m256i table, const uint8_t* const* codes, const float* const* s, const int8_t* xa,
                                const float* sa, size_t bpr, float* y, const uint8_t* next) {
  __m256 acc[R];
  for (size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (size_t b = 0; b < bpr; ++b) {
    const __m256 sab = _mm256_broadcast_ss(sa + b);
    for (size_t r = 0; r < R; ++r) {
      if (next != nullptr && b % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(next + r * bpr * 32 + b * 32), _MM_HINT_T1);
      __m256i we, wo;
      Decode(table, codes[r] + b * 32, &we, &wo);
      acc[r] = Scale(BlockDot(we, wo, xa + b * 128), _mm256_broadcast_ss(s[r] + b), sab, acc[r]);
    }
  }
  for (size_t r = 0; r < R; ++r) y[r] = SumLanes256(acc[r]);
}

// Prompts: one row x T tokens; the row's block is decoded to int16 once for T tokens.
// x16: token t's blocks at x16 + t * bpr * 64; sa: token t's at sa + t * bpr. y[t * ldy].
template <size_t T>
NB_AVX2_TARGET inline void PromptTile(__m256i table, const uint8_t* codes, const float* s, const int16_t* x16,
                                      const float* sa, size_t bpr, float* y, size_t ldy) {
  __m256 acc[T];
  for (size_t t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (size_t b = 0; b < bpr; ++b) {
    __m256i w[4];
    Decode16(table, codes + b * 32, w);
    const __m256 absmax = _mm256_broadcast_ss(s + b);
    for (size_t t = 0; t < T; ++t)
      acc[t] = Scale(BlockDot16(w, x16 + (t * bpr + b) * 64), absmax, _mm256_broadcast_ss(sa + t * bpr + b), acc[t]);
  }
  for (size_t t = 0; t < T; ++t) y[t * ldy] = SumLanes256(acc[t]);
}

}  // namespace

NB_AVX2_TARGET void Gemv4I8RowsAvx2(const QTensor* w, const Int8Table& table, const Avx2Activations& act, int64_t M,
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
  if (act.x16 != nullptr) {
    // Prompts: a block of tokens whose int16 activations fit in half of L2 (256 KiB) is
    // held there while every row streams past, row by row, kTokens tokens per tile (the
    // row stays in L1); the weights are read once per token block.
    const size_t tb = std::max<size_t>(kTokens, (size_t{256} << 10) / (K * 2) / kTokens * kTokens);
    for (size_t m0 = 0; m0 < static_cast<size_t>(M); m0 += tb) {
      const size_t m1 = std::min(static_cast<size_t>(M), m0 + tb);
      for (int64_t r = n0; r < n1; ++r) {
        setup(r, 0);
        size_t m = m0;
        for (; m + kTokens <= m1; m += kTokens)
          PromptTile<kTokens>(tab, codes[0], s[0], act.x16 + m * bpr * 64, act.sa + m * bpr, bpr, y + m * N + r, N);
        for (; m < m1; ++m)
          PromptTile<1>(tab, codes[0], s[0], act.x16 + m * bpr * 64, act.sa + m * bpr, bpr, y + m * N + r, N);
      }
    }
    return;
  }
  for (; n + static_cast<int64_t>(kR) <= n1; n += kR) {
    for (size_t r = 0; r < kR; ++r) setup(n + static_cast<int64_t>(r), r);
    // The next pass's rows follow these contiguously (codes are row-major).
    const uint8_t* next = n + 2 * static_cast<int64_t>(kR) <= n1 ? codes[0] + kR * K / 2 : nullptr;
    for (int64_t m = 0; m < M; ++m)
      Rows<kR>(tab, codes, s, act.xa + m * bpr * 128, act.sa + m * bpr, bpr, y + m * N + n, m == 0 ? next : nullptr);
  }
  for (; n < n1; ++n) {
    setup(n, 0);
    for (int64_t m = 0; m < M; ++m) Rows<1>(tab, codes, s, act.xa + m * bpr * 128, act.sa + m * bpr, bpr, y + m * N + n, nullptr);
  }
}

}  // namespace nibble::quant::detail
#endif  // __x86_64__
