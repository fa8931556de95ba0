// Adam8bitStep / Adam32bitStep: spec §4.2.2 element by element, in its order of binary32
// operations (built with -ffp-contract=off, so no product is fused into a sum).
#include "optim/adam8bit.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "quant/formats/dynamic8/dynamic8.h"

namespace nibble::optim {
namespace {

namespace d8 = quant::dynamic8;

struct Maps {
  d8::Map sig = d8::SignedMap(), uns = d8::UnsignedMap();
  d8::SelectTable sig_sel = d8::MakeSelectTable(sig), uns_sel = d8::MakeSelectTable(uns);
};
const Maps& TheMaps() {
  static const Maps m;
  return m;
}

struct Consts {
  float b1, b2, one_minus_b1, one_minus_b2, step_size, c2_eps, decay;
  bool wd;
  float gs;
};

Consts MakeConsts(int64_t step, const BnbAdamHyper& h) {
  Consts k;
  const double t = static_cast<double>(step);
  // f32(β^t) correctly rounded: the double pow of the binary32 β, then one rounding.
  const float c1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(h.beta1), t));
  const float c2 = std::sqrt(1.0f - static_cast<float>(std::pow(static_cast<double>(h.beta2), t)));
  const float neg_lr_c2 = -h.lr * c2;
  k.step_size = neg_lr_c2 / c1;
  k.c2_eps = c2 * h.eps;
  k.b1 = h.beta1;
  k.b2 = h.beta2;
  k.one_minus_b1 = 1.0f - h.beta1;
  k.one_minus_b2 = 1.0f - h.beta2;
  const float lr_wd = h.lr * h.weight_decay;
  k.decay = 1.0f - lr_wd;
  k.wd = h.weight_decay > 0.0f;
  k.gs = h.gnorm_scale;
  return k;
}

// The moments' update of one element with a finite gradient.
inline void Moments(const Consts& k, float g, float& m, float& v) {
  g = g * k.gs;
  const float vg = k.one_minus_b2 * g;
  v = v * k.b2 + vg * g;
  const float mg = k.one_minus_b1 * g;
  m = m * k.b1 + mg;
}

inline void Update(const Consts& k, float m, float v, float& p) {
  const float den = std::sqrt(v) + k.c2_eps;
  const float u = m / den;
  const float su = k.step_size * u;
  p = p + su;
  if (k.wd) p = p * k.decay;
}

void Block8(const Consts& k, const Maps& maps, float* p, const float* g, uint8_t* q1, uint8_t* q2, float& a1,
            float& a2, size_t n) {
  float m[kAdam8bitBlock], v[kAdam8bitBlock];
  bool finite[kAdam8bitBlock];
  float new_a1 = 0.0f, new_a2 = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    finite[i] = std::isfinite(g[i]);
    if (finite[i]) {
      v[i] = maps.uns[q2[i]] * a2;
      m[i] = maps.sig[q1[i]] * a1;
      Moments(k, g[i], m[i], v[i]);
    } else {
      m[i] = 0.0f;
      v[i] = 0.0f;
    }
    new_a1 = std::max(new_a1, std::fabs(m[i]));
    new_a2 = std::max(new_a2, std::fabs(v[i]));
  }
  a1 = new_a1;
  a2 = new_a2;
  for (size_t i = 0; i < n; ++i) {
    if (finite[i]) Update(k, m[i], v[i], p[i]);
    // m / 0 is NaN for an all-zero block: Select gives 0, the sign fix 255 (spec §4.2.2).
    uint8_t c1 = d8::Select(maps.sig_sel, m[i] / new_a1);
    if (std::signbit(maps.sig[c1]) != std::signbit(m[i])) c1 = static_cast<uint8_t>(m[i] > 0.0f ? c1 + 1 : c1 - 1);
    q1[i] = c1;
    q2[i] = d8::Select(maps.uns_sel, v[i] / new_a2);
  }
}

// Blocks of whole 256s per thread chunk; below 64 Ki elements one thread.
template <class F>
void OverBlocks(int threads, size_t n, F&& f) {
  const size_t blocks = (n + kAdam8bitBlock - 1) / kAdam8bitBlock;
  constexpr size_t kPerChunk = 256;  // blocks per chunk: 64 Ki elements
  const long chunks = static_cast<long>((blocks + kPerChunk - 1) / kPerChunk);
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static) if (chunks > 1 && threads > 1)
  for (long c = 0; c < chunks; ++c) {
    const size_t b0 = static_cast<size_t>(c) * kPerChunk, b1 = std::min(blocks, b0 + kPerChunk);
    for (size_t b = b0; b < b1; ++b) f(b, b * kAdam8bitBlock, std::min(n, (b + 1) * kAdam8bitBlock));
  }
}

}  // namespace

void Adam8bitStep(int num_threads, float* p, const float* g, uint8_t* q1, uint8_t* q2, float* absmax1,
                  float* absmax2, size_t n, int64_t step, const BnbAdamHyper& h) noexcept {
  const Consts k = MakeConsts(step, h);
  const Maps& maps = TheMaps();
  OverBlocks(num_threads, n, [&](size_t b, size_t i0, size_t i1) {
    Block8(k, maps, p + i0, g + i0, q1 + i0, q2 + i0, absmax1[b], absmax2[b], i1 - i0);
  });
}

void Adam32bitStep(int num_threads, float* p, const float* g, float* m, float* v, size_t n, int64_t step,
                   const BnbAdamHyper& h) noexcept {
  const Consts k = MakeConsts(step, h);
  OverBlocks(num_threads, n, [&](size_t, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      if (!std::isfinite(g[i])) continue;
      Moments(k, g[i], m[i], v[i]);
      Update(k, m[i], v[i], p[i]);
    }
  });
}

}  // namespace nibble::optim
