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

// The attention probabilities of one (token, head) row: scores[s] = softmax_s(scale ·
// qh·k_s) over the n visible positions. The forward and the backward both call this, so
// the backward sees exactly the forward's probabilities.
inline void AttentionProbsRow(const float* HWY_RESTRICT qh, const float* HWY_RESTRICT k, size_t n, size_t kv_stride,
                              size_t Dh, float scale, float* HWY_RESTRICT scores) {
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
}

// One (token, head) row: qh [Dh]; k, v point at the row's kv head in cache row 0 (row
// stride kv_stride); n visible positions; scores: [n] scratch; oh: [Dh] output.
inline void AttendRowImpl(const float* HWY_RESTRICT qh, const float* HWY_RESTRICT k, const float* HWY_RESTRICT v,
                          float* HWY_RESTRICT oh, size_t n, size_t kv_stride, size_t Dh, float scale,
                          float* HWY_RESTRICT scores) {
  AttentionProbsRow(qh, k, n, kv_stride, Dh, scale, scores);

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

// Σ a·b over Dh (vector FMA, scalar tail).
HWY_INLINE float DotDh(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t Dh) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto acc = hn::Zero(d);
  size_t x = 0;
  for (; x + L <= Dh; x += L) acc = hn::MulAdd(hn::LoadU(d, a + x), hn::LoadU(d, b + x), acc);
  float s = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; x < Dh; ++x) s += a[x] * b[x];
  return s;
}

// y += alpha · x over Dh.
HWY_INLINE void AxpyDh(float alpha, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t Dh) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto va = hn::Set(d, alpha);
  size_t i = 0;
  for (; i + L <= Dh; i += L) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < Dh; ++i) y[i] += alpha * x[i];
}

// Backward of one (token, head) row (kernels/attention.h): p recomputed as the forward
// computed it, D = do·o, then per visible position s: ds = p_s·(do·v_s − D)·scale,
// dq += ds·k_s, dk_s += ds·q, dv_s += p_s·do. dqh is written; dk, dv (row stride
// kv_stride) accumulate. p: [n] scratch.
inline void AttendRowBackwardImpl(const float* HWY_RESTRICT qh, const float* HWY_RESTRICT k,
                                  const float* HWY_RESTRICT v, const float* HWY_RESTRICT oh,
                                  const float* HWY_RESTRICT doh, float* HWY_RESTRICT dqh, float* HWY_RESTRICT dk,
                                  float* HWY_RESTRICT dv, size_t n, size_t kv_stride, size_t Dh, float scale,
                                  float* HWY_RESTRICT p) {
  AttentionProbsRow(qh, k, n, kv_stride, Dh, scale, p);
  const float D = DotDh(doh, oh, Dh);
  for (size_t x = 0; x < Dh; ++x) dqh[x] = 0.0f;
  for (size_t s = 0; s < n; ++s) {
    const float* ks = k + s * kv_stride;
    const float* vs = v + s * kv_stride;
    const float ds = p[s] * (DotDh(doh, vs, Dh) - D) * scale;
    AxpyDh(ds, ks, dqh, Dh);
    AxpyDh(ds, qh, dk + s * kv_stride, Dh);
    AxpyDh(p[s], doh, dv + s * kv_stride, Dh);
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
