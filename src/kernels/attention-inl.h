// Per-target body of CausalAttention (kernels/attention.h) for one (token, head) row:
// q·k over Dh with vector FMA, one key per lane per block (independent chains, sums
// transposed into one score vector), the softmax row (softmax-inl.h), then o = Σ p_s v_s
// with the output held in vector registers.

#if defined(NIBBLE_KERNELS_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_ATTENTION_INL_H_
#undef NIBBLE_KERNELS_ATTENTION_INL_H_
#else
#define NIBBLE_KERNELS_ATTENTION_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"
#include "kernels/softmax-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// scores[j] = scale · dot(qh, k row j) for the kN keys at ks, ks + kv_stride, ...; the
// Dh tail (Dh % lanes) is summed in scalar.
template <size_t kN>
HWY_INLINE void ScoreKeys(const float* HWY_RESTRICT qh, const float* HWY_RESTRICT ks, size_t kv_stride, size_t Dh,
                          float scale, float* HWY_RESTRICT scores) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kN];
  for (size_t j = 0; j < kN; ++j) acc[j] = hn::Zero(d);
  size_t x = 0;
  for (; x + L <= Dh; x += L) {
    const auto qv = hn::LoadU(d, qh + x);
    for (size_t j = 0; j < kN; ++j) acc[j] = hn::MulAdd(qv, hn::LoadU(d, ks + j * kv_stride + x), acc[j]);
  }
  for (size_t j = 0; j < kN; ++j) {
    float dot = hn::GetLane(hn::SumOfLanes(d, acc[j]));
    for (size_t xx = x; xx < Dh; ++xx) dot += qh[xx] * ks[j * kv_stride + xx];
    scores[j] = dot * scale;
  }
}

// scores[j] = scale · dot(qh, k row j) for as many keys as there are lanes (kL): one
// accumulator per key, then a transposing reduction tree: each level adds the even and odd
// lanes of two accumulators into one (ConcatEven/ConcatOdd keep the first in the lower
// half), so after log2(kL) levels lane j holds key j's sum, in order, for one store.
// kL - 1 Add and 2(kL - 1) shuffles per kL keys instead of a full SumOfLanes per key.
#if HWY_TARGET != HWY_SCALAR  // the scalar target has one lane and no ConcatOdd
template <size_t kL>
HWY_INLINE void ScoreKeysTransposed(const float* HWY_RESTRICT qh, const float* HWY_RESTRICT ks, size_t kv_stride,
                                    size_t Dh, float scale, float* HWY_RESTRICT scores) {
  const hn::ScalableTag<float> d;
  hn::Vec<decltype(d)> acc[kL];
  for (size_t j = 0; j < kL; ++j) acc[j] = hn::Zero(d);
  size_t x = 0;
  for (; x + kL <= Dh; x += kL) {
    const auto qv = hn::LoadU(d, qh + x);
    for (size_t j = 0; j < kL; ++j) acc[j] = hn::MulAdd(qv, hn::LoadU(d, ks + j * kv_stride + x), acc[j]);
  }
  for (size_t m = kL; m > 1; m /= 2) {
    for (size_t j = 0; j < m / 2; ++j) {
      acc[j] = hn::Add(hn::ConcatEven(d, acc[2 * j + 1], acc[2 * j]), hn::ConcatOdd(d, acc[2 * j + 1], acc[2 * j]));
    }
  }
  hn::StoreU(hn::Mul(acc[0], hn::Set(d, scale)), d, scores);
  if (x < Dh) {
    for (size_t j = 0; j < kL; ++j) {
      float tail = 0.0f;
      for (size_t xx = x; xx < Dh; ++xx) tail += qh[xx] * ks[j * kv_stride + xx];
      scores[j] += tail * scale;
    }
  }
}
#endif

// oh[x0 .. x0 + kC·L) = Σ_s p_s v_s[x0 ..] over n positions, kC output vectors in registers;
// even and odd positions go to separate accumulators (two FMA chains per output vector,
// so the FMA latency is hidden), added at the end.
template <size_t kC>
HWY_INLINE void WeightedSumChunk(const float* HWY_RESTRICT p, const float* HWY_RESTRICT vs, size_t kv_stride,
                                 size_t n, float* HWY_RESTRICT oh) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  hn::Vec<decltype(d)> acc0[kC], acc1[kC];
  for (size_t c = 0; c < kC; ++c) acc0[c] = acc1[c] = hn::Zero(d);
  size_t s = 0;
  for (; s + 2 <= n; s += 2) {
    const auto p0 = hn::Set(d, p[s]), p1 = hn::Set(d, p[s + 1]);
    const float* row0 = vs + s * kv_stride;
    const float* row1 = row0 + kv_stride;
    for (size_t c = 0; c < kC; ++c) {
      acc0[c] = hn::MulAdd(p0, hn::LoadU(d, row0 + c * L), acc0[c]);
      acc1[c] = hn::MulAdd(p1, hn::LoadU(d, row1 + c * L), acc1[c]);
    }
  }
  if (s < n) {
    const auto p0 = hn::Set(d, p[s]);
    for (size_t c = 0; c < kC; ++c) acc0[c] = hn::MulAdd(p0, hn::LoadU(d, vs + s * kv_stride + c * L), acc0[c]);
  }
  for (size_t c = 0; c < kC; ++c) hn::StoreU(hn::Add(acc0[c], acc1[c]), d, oh + c * L);
}

// One (token, head) row: qh [Dh]; k, v point at the row's kv head in cache row 0 (row
// stride kv_stride); n visible positions; scores: [n] scratch; oh: [Dh] output.
inline void AttendRowImpl(const float* HWY_RESTRICT qh, const float* HWY_RESTRICT k, const float* HWY_RESTRICT v,
                          float* HWY_RESTRICT oh, size_t n, size_t kv_stride, size_t Dh, float scale,
                          float* HWY_RESTRICT scores) {
  constexpr size_t kKeys = 4;
  size_t s = 0;
#if HWY_TARGET != HWY_SCALAR
  // Full-width blocks where the vector width is fixed (MaxLanes is only an upper bound on
  // scalable vectors).
  constexpr size_t kLanes = hn::MaxLanes(hn::ScalableTag<float>());
  if (hn::Lanes(hn::ScalableTag<float>()) == kLanes) {
    for (; s + kLanes <= n; s += kLanes)
      ScoreKeysTransposed<kLanes>(qh, k + s * kv_stride, kv_stride, Dh, scale, scores + s);
  }
#endif
  for (; s + kKeys <= n; s += kKeys) ScoreKeys<kKeys>(qh, k + s * kv_stride, kv_stride, Dh, scale, scores + s);
  for (; s < n; ++s) ScoreKeys<1>(qh, k + s * kv_stride, kv_stride, Dh, scale, scores + s);
  SoftmaxRow(scores, n);

  // Output in chunks of up to 4 vectors (Dh = 64 is one chunk on AVX3, two on AVX2), so
  // v is streamed once per chunk; the Dh tail in scalar.
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t x = 0;
  for (; x + 4 * L <= Dh; x += 4 * L) WeightedSumChunk<4>(scores, v + x, kv_stride, n, oh + x);
  for (; x + L <= Dh; x += L) WeightedSumChunk<1>(scores, v + x, kv_stride, n, oh + x);
  for (; x < Dh; ++x) {
    float o = 0.0f;
    for (size_t t = 0; t < n; ++t) o += scores[t] * v[t * kv_stride + x];
    oh[x] = o;
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
