// The int8-activation 4-bit GEMV through vpdpbusd (AVX512-VNNI), any blocksize that is a
// multiple of 64 (each weight absmax repeated for its 64-column blocks).
// Four blocks of a row (128 code bytes, two loads) per step: vshufi64x2 puts each
// block's first / second 16 code bytes into its own 128-bit lane, the low and high
// nibbles index a 16-byte table per lane (vpshufb) holding T[c] + 128 as unsigned bytes,
// and vpdpbusd multiplies them with the int8 activations (laid out to match by
// LayoutForVnni). The +128 offset is removed exactly by starting each accumulator at
// -128 * sum(q) spread over its block's four lanes. Per group one vcvtdq2ps and one
// FMA apply absmax * d / mult lane by lane, so no horizontal sum runs per block: about
// 21 instructions per 256 weights per row, against 48+ for the f32 table path. Highway
// 1.0.3 emits no VNNI, so intrinsics under a target attribute (C7); QGemv4I8 calls
// this only after CpuHasAvx512Vnni().
// Prefetch: while a pass works on rows n..n+3, it pulls the same bytes of rows
// n+4..n+7 into L2 (prefetcht1). Four row streams 7 KB apart defeat the hardware
// prefetcher's distance; measured on Zen 4 (bench/RESULTS.md), cold 4096 x 14336:
// 2.53 -> 1.43-1.85 ms on 1 thread; prefetcht0 at +1 KB in the same row cost 30 % warm.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/qgemv4_i8.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/avx512_sum_lanes.h"

#define NB_AVX512VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

namespace nibble::quant::detail {
namespace {

constexpr size_t kR = 4;       // rows per pass of the GEMV: each activation load serves kR rows
constexpr size_t kTokens = 4;  // tokens per tile of the prompt path (RowsTokens)

// Masked forms throughout: the unmasked intrinsics pass an _mm512_undefined_* operand
// that g++ 12 flags with -Wmaybe-uninitialized (GCC PR 105593).
constexpr __mmask16 kAll16 = 0xFFFF;

// Which bytes of a group (four 64-column blocks, 128 code bytes) a row really has: the
// tail group reads only the row's remaining blocks (codes and scales).
struct GroupMasks {
  __mmask64 m0, m1;  // code bytes 0..63, 64..127
  __mmask8 m4;       // the group's four absmax
  explicit GroupMasks(size_t nblk)
      : m0(nblk >= 2 ? ~__mmask64{0} : (__mmask64{1} << (32 * nblk)) - 1),
        m1(nblk == 4 ? ~__mmask64{0} : (nblk <= 2 ? 0 : (__mmask64{1} << (32 * (nblk - 2))) - 1)),
        m4(static_cast<__mmask8>((1u << nblk) - 1)) {}
};

// The group's 256 weights of one row as T[c] + 128 in the activation layout: w[j] is
// step j (low / high nibbles of each block's first / second 16 code bytes, one block per
// 128-bit lane).
NB_AVX512VNNI_TARGET inline void Decode(__m512i table, const uint8_t* c, const GroupMasks& mk, __m512i* w) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i c0 = _mm512_maskz_loadu_epi8(mk.m0, c), c1 = _mm512_maskz_loadu_epi8(mk.m1, c + 64);
  const __m512i first = _mm512_maskz_shuffle_i64x2(0xFF, c0, c1, 0x88);   // lanes: block 0..3, code bytes 0..15
  const __m512i second = _mm512_maskz_shuffle_i64x2(0xFF, c0, c1, 0xDD);  // lanes: block 0..3, code bytes 16..31
  w[0] = _mm512_shuffle_epi8(table, _mm512_and_si512(first, low4));
  w[1] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(first, 4), low4));
  w[2] = _mm512_shuffle_epi8(table, _mm512_and_si512(second, low4));
  w[3] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(second, 4), low4));
}

// The row's four absmax of group g, each repeated over its block's four int32 lanes.
NB_AVX512VNNI_TARGET inline __m512 RowScales(const float* s, size_t g, const GroupMasks& mk) {
  const __m512i lane_idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const __m512 s4 = _mm512_zextps128_ps512(_mm_maskz_loadu_ps(mk.m4, s + 4 * g));
  return _mm512_maskz_permutexvar_ps(kAll16, lane_idx, s4);
}

// One token, R rows: each activation load serves R rows.
template <size_t R>
NB_AVX512VNNI_TARGET inline void Rows(__m512i table, const uint8_t* const* codes, const float* const* s,
                                      const VnniActivations& a, size_t bpr, float* y, const uint8_t* next) {
  const size_t groups = (bpr + 3) / 4, full = bpr / 4;
  const __mmask16 all16 = kAll16;
  __m512 accf[R];
  for (size_t r = 0; r < R; ++r) accf[r] = _mm512_setzero_ps();
  for (size_t g = 0; g < groups; ++g) {
    const int8_t* xa = a.xa.data() + g * 256;
    const __m512i x0 = _mm512_loadu_si512(xa), x1 = _mm512_loadu_si512(xa + 64);
    const __m512i x2 = _mm512_loadu_si512(xa + 128), x3 = _mm512_loadu_si512(xa + 192);
    const __m512i bias = _mm512_loadu_si512(a.bias.data() + g * 16);
    const __m512 sa = _mm512_loadu_ps(a.sa.data() + g * 16);
    const GroupMasks mk(g < full ? 4 : bpr - 4 * g);
    for (size_t r = 0; r < R; ++r) {
      const uint8_t* c = codes[r] + g * 128;
      if (next != nullptr) {  // the same 128 bytes of the next pass's row r, into L2
        const char* p = reinterpret_cast<const char*>(next + r * bpr * 32 + g * 128);
        _mm_prefetch(p, _MM_HINT_T1);
        _mm_prefetch(p + 64, _MM_HINT_T1);
      }
      __m512i w[4];
      Decode(table, c, mk, w);
      __m512i acc = bias;
      acc = _mm512_dpbusd_epi32(acc, w[0], x0);
      acc = _mm512_dpbusd_epi32(acc, w[1], x1);
      acc = _mm512_dpbusd_epi32(acc, w[2], x2);
      acc = _mm512_dpbusd_epi32(acc, w[3], x3);
      const __m512 scale = _mm512_mul_ps(RowScales(s[r], g, mk), sa);
      accf[r] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(all16, acc), scale, accf[r]);
    }
  }
  for (size_t r = 0; r < R; ++r) y[r] = kernels::SumLanes512(accf[r]);
}

// R rows x T tokens (prompts): each row's group is decoded once for T tokens and each
// activation load serves R rows. Per (row, token) the operations and their order are
// those of Rows, so the results are bit-identical to running Rows token by token.
// y[t * ldy + r].
template <size_t R, size_t T>
NB_AVX512VNNI_TARGET inline void RowsTokens(__m512i table, const uint8_t* const* codes, const float* const* s,
                                            const VnniActivations* a, size_t bpr, float* y, size_t ldy) {
  const size_t groups = (bpr + 3) / 4, full = bpr / 4;
  __m512 accf[R][T];
  for (size_t r = 0; r < R; ++r)
    for (size_t t = 0; t < T; ++t) accf[r][t] = _mm512_setzero_ps();
  for (size_t g = 0; g < groups; ++g) {
    const GroupMasks mk(g < full ? 4 : bpr - 4 * g);
    __m512i w[R][4];
    __m512 sw[R];
    for (size_t r = 0; r < R; ++r) {
      Decode(table, codes[r] + g * 128, mk, w[r]);
      sw[r] = RowScales(s[r], g, mk);
    }
    for (size_t t = 0; t < T; ++t) {
      const int8_t* xa = a[t].xa.data() + g * 256;
      const __m512i x0 = _mm512_loadu_si512(xa), x1 = _mm512_loadu_si512(xa + 64);
      const __m512i x2 = _mm512_loadu_si512(xa + 128), x3 = _mm512_loadu_si512(xa + 192);
      const __m512i bias = _mm512_loadu_si512(a[t].bias.data() + g * 16);
      const __m512 sa = _mm512_loadu_ps(a[t].sa.data() + g * 16);
      for (size_t r = 0; r < R; ++r) {
        __m512i acc = bias;
        acc = _mm512_dpbusd_epi32(acc, w[r][0], x0);
        acc = _mm512_dpbusd_epi32(acc, w[r][1], x1);
        acc = _mm512_dpbusd_epi32(acc, w[r][2], x2);
        acc = _mm512_dpbusd_epi32(acc, w[r][3], x3);
        accf[r][t] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll16, acc), _mm512_mul_ps(sw[r], sa), accf[r][t]);
      }
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t t = 0; t < T; ++t) y[t * ldy + r] = kernels::SumLanes512(accf[r][t]);
}

// QTensor::BlockScales for blocks [begin, end) with AVX-512 gathers: the same products
// and sums (map[code] * nested absmax, then + offset: two roundings), bit for bit.
NB_AVX512VNNI_TARGET inline void BlockScalesAvx512(const QTensor& w, int64_t begin, int64_t end, float* out) {
  if (!w.nested) {
    w.BlockScales(begin, end, out);
    return;
  }
  const float* map = w.nested_map.data();
  const uint8_t* codes = w.scale_codes.data();
  const __m512 offset = _mm512_set1_ps(w.nested_offset);
  for (int64_t j = begin; j < end;) {  // one nested block at a time
    const int64_t stop = std::min(end, (j / w.nested_blocksize + 1) * w.nested_blocksize);
    const __m512 na = _mm512_set1_ps(w.nested_absmax[static_cast<size_t>(j / w.nested_blocksize)]);
    for (; j < stop; j += 16) {
      const int64_t n = std::min<int64_t>(16, stop - j);
      const auto m = static_cast<__mmask16>((1u << n) - 1);
      const __m512i idx = _mm512_maskz_cvtepu8_epi32(m, _mm_maskz_loadu_epi8(m, codes + j));
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, map, 4);
      _mm512_mask_storeu_ps(out + (j - begin), m, _mm512_add_ps(_mm512_mul_ps(v, na), offset));
    }
    j = stop;
  }
}

}  // namespace

NB_AVX512VNNI_TARGET void QuantizeForVnni(const float* x, int64_t K, float mult, VnniActivations* out) noexcept {
  const int64_t nb = K / 64, groups = (nb + 3) / 4;
  out->xa.assign(static_cast<size_t>(groups * 256), 0);
  out->bias.assign(static_cast<size_t>(groups * 16), 0);
  out->sa.assign(static_cast<size_t>(groups * 16), 0.0f);
  const __mmask16 all16 = 0xFFFF;
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  // Even / odd elements of two 16-float vectors (indices >= 16 pick from the second).
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  alignas(64) float t[16];
  alignas(64) int32_t ti[16];
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * 64;
    __m512 v[4];
    __m512 m = _mm512_setzero_ps();
    __mmask16 nonfinite = 0;  // exponent all ones: inf or NaN
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm512_loadu_ps(xb + 16 * i);
      const __m512i bits = _mm512_and_si512(_mm512_castps_si512(v[i]), abs_mask);
      nonfinite |= _mm512_cmpge_epi32_mask(bits, _mm512_set1_epi32(0x7F800000));
      m = _mm512_maskz_max_ps(all16, m, _mm512_castsi512_ps(bits));
    }
    _mm512_store_ps(t, m);
    float amax = 0.0f;
    for (float e : t) amax = e > amax ? e : amax;
    // As QuantizeActivationsQ8: NaN/inf blocks get q = 0, d = NaN; q = 0 where 127 / amax
    // overflows.
    const bool finite = nonfinite == 0;
    float inv = finite && amax > 0.0f ? 127.0f / amax : 0.0f;
    if (!std::isfinite(inv)) inv = 0.0f;
    const __m512 vinv = _mm512_set1_ps(inv);
    for (int i = 0; i < 4; ++i) v[i] = _mm512_mul_ps(v[i], vinv);
    // vcvtps2dq rounds to nearest even (MXCSR default), as RoundNearestEven; |v| < 127.5.
    __m512i q[4] = {
        _mm512_maskz_cvtps_epi32(all16, _mm512_permutex2var_ps(v[0], odd, v[1])),   // step 0: 1, 3, .., 31
        _mm512_maskz_cvtps_epi32(all16, _mm512_permutex2var_ps(v[0], even, v[1])),  // step 1: 0, 2, .., 30
        _mm512_maskz_cvtps_epi32(all16, _mm512_permutex2var_ps(v[2], odd, v[3])),   // step 2: 33, .., 63
        _mm512_maskz_cvtps_epi32(all16, _mm512_permutex2var_ps(v[2], even, v[3])),  // step 3: 32, .., 62
    };
    if (!finite) {  // v * 0 is NaN there: vcvtps2dq would give INT_MIN
      for (__m512i& e : q) e = _mm512_setzero_si512();
    }
    const int64_t g = b / 4, k = b % 4;
    for (int j = 0; j < 4; ++j)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out->xa.data() + g * 256 + j * 64 + k * 16),
                       _mm512_maskz_cvtepi32_epi8(all16, q[j]));
    _mm512_store_si512(ti, _mm512_add_epi32(_mm512_add_epi32(q[0], q[1]), _mm512_add_epi32(q[2], q[3])));
    int32_t sum = 0;
    for (int32_t e : ti) sum += e;
    const float sa = (finite ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN()) / mult;
    for (int64_t l = 0; l < 4; ++l) {
      out->bias[static_cast<size_t>(g * 16 + 4 * k + l)] = -32 * sum;
      out->sa[static_cast<size_t>(g * 16 + 4 * k + l)] = sa;
    }
  }
}

NB_AVX512VNNI_TARGET void Gemv4I8RowsVnni(const QTensor* w, const Int8Table& table, const VnniActivations* act,
                                          int64_t M, float* y, int64_t n0, int64_t n1, float* scale_buf) noexcept {
  const auto K = static_cast<size_t>(w->cols()), N = static_cast<size_t>(w->rows());
  const size_t bpr = K / 64, padded = (bpr + 3) / 4 * 4;
  alignas(16) uint8_t tu[16];
  for (size_t c = 0; c < 16; ++c) tu[c] = static_cast<uint8_t>(table.t[c] + 128);
  const __m512i tab = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_load_si128(reinterpret_cast<const __m128i*>(tu)));
  const uint8_t* codes[kR];
  const float* s[kR];
  // Per 64-column block of a row, the absmax of the weight block holding it.
  const auto B = static_cast<size_t>(w->blocksize), wpr = K / B, per = B / 64;
  std::vector<float> row_scales(per > 1 ? wpr : 0);
  auto setup = [&](int64_t n, size_t r) {
    if (!w->nested && per == 1) {
      s[r] = w->scales.data() + static_cast<size_t>(n) * bpr;
    } else if (per == 1) {  // scale_buf: kR rows of reconstructed absmax, each padded to whole groups
      BlockScalesAvx512(*w, n * static_cast<int64_t>(bpr), (n + 1) * static_cast<int64_t>(bpr), scale_buf + r * padded);
      s[r] = scale_buf + r * padded;
    } else {  // blocksize 128, 256, ...: each absmax repeated for its B/64 column blocks
      BlockScalesAvx512(*w, n * static_cast<int64_t>(wpr), (n + 1) * static_cast<int64_t>(wpr), row_scales.data());
      float* dst = scale_buf + r * padded;
      for (size_t j = 0; j < bpr; ++j) dst[j] = row_scales[j / per];
      s[r] = dst;
    }
    codes[r] = w->codes.data() + static_cast<size_t>(n) * K / 2;
  };
  int64_t n = n0;
  if (M >= static_cast<int64_t>(kTokens)) {  // prompts: 2 rows x 4 tokens per tile, the rows from L1 after the first tile
    constexpr size_t kRows = 2;
    for (; n < n1; n += kRows) {
      const size_t rows = std::min<size_t>(kRows, static_cast<size_t>(n1 - n));
      for (size_t r = 0; r < rows; ++r) setup(n + static_cast<int64_t>(r), r);
      int64_t m = 0;
      for (; m + static_cast<int64_t>(kTokens) <= M; m += kTokens) {
        if (rows == kRows) {
          RowsTokens<kRows, kTokens>(tab, codes, s, act + m, bpr, y + m * N + n, N);
        } else {
          RowsTokens<1, kTokens>(tab, codes, s, act + m, bpr, y + m * N + n, N);
        }
      }
      for (; m < M; ++m) {
        if (rows == kRows) {
          RowsTokens<kRows, 1>(tab, codes, s, act + m, bpr, y + m * N + n, N);
        } else {
          RowsTokens<1, 1>(tab, codes, s, act + m, bpr, y + m * N + n, N);
        }
      }
    }
    return;
  }
  for (; n + static_cast<int64_t>(kR) <= n1; n += kR) {
    for (size_t r = 0; r < kR; ++r) setup(n + static_cast<int64_t>(r), r);
    // The next pass's rows follow these contiguously (codes are row-major).
    const uint8_t* next = n + 2 * static_cast<int64_t>(kR) <= n1 ? codes[0] + kR * K / 2 : nullptr;
    for (int64_t m = 0; m < M; ++m) Rows<kR>(tab, codes, s, act[m], bpr, y + m * N + n, m == 0 ? next : nullptr);
  }
  for (; n < n1; ++n) {
    setup(n, 0);
    for (int64_t m = 0; m < M; ++m) Rows<1>(tab, codes, s, act[m], bpr, y + m * N + n, nullptr);
  }
}

}  // namespace nibble::quant::detail
#endif  // __x86_64__
