// Causal GQA attention: Highway dispatch of the per-target row kernel (attention-inl.h),
// OpenMP over the T·H independent (token, head) rows; its backward as GEMMs per head; and
// the double oracles.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "kernels/attention-inl.h"
#include "kernels/gemm.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

// Below this many multiply-adds (scores plus weighted sum) one thread beats waking a team.
constexpr size_t kMinParallelMacs = size_t{1} << 15;

void CausalAttentionTarget(int num_threads, const float* q, const float* k, const float* v, float* out, size_t T,
                           size_t start_pos, size_t H, size_t KV, size_t Dh, float* scratch) {
  const size_t group = H / KV;
  const size_t kv_stride = KV * Dh;
  const size_t P = start_pos + T;
  // HF scales by head_dim ** -0.5; the f32 rounding of the factor is the only difference.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dh)));
  const long rows = static_cast<long>(T * H);
  const bool parallel = num_threads > 1 && T * H * P * Dh * 2 >= kMinParallelMacs;
  // Row r = (token t, head i) costs ~ start_pos + t: rows are dealt round-robin so both
  // halves of the causal triangle are shared (contiguous blocks would give the last
  // thread 3/4 of a prompt's work at 2 threads).
#pragma omp parallel for num_threads(num_threads) schedule(static, 1) if (parallel)
  for (long r = 0; r < rows; ++r) {
    const size_t t = static_cast<size_t>(r) / H, i = static_cast<size_t>(r) % H;
    const size_t off = (i / group) * Dh;
    float* scores = scratch + static_cast<size_t>(omp_get_thread_num()) * P;
    AttendRowImpl(q + t * H * Dh + i * Dh, k + off, v + off, out + t * H * Dh + i * Dh, start_pos + t + 1,
                  kv_stride, Dh, scale, scores);
  }
}

// x[0, n) *= scale.
void ScaleRow(float* HWY_RESTRICT x, size_t n, float scale) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto vs = hn::Set(d, scale);
  size_t s = 0;
  for (; s + L <= n; s += L) hn::StoreU(hn::Mul(hn::LoadU(d, x + s), vs), d, x + s);
  for (; s < n; ++s) x[s] *= scale;
}

// dS = P ⊙ (dP − D)·scale over the n visible positions of one row, 0 beyond (to P).
void AttentionDsRow(const float* HWY_RESTRICT prob, float* HWY_RESTRICT dp, float D, float scale, size_t n,
                    size_t P) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto vD = hn::Set(d, D), vs = hn::Set(d, scale);
  size_t s = 0;
  for (; s + L <= n; s += L)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, prob + s), hn::Sub(hn::LoadU(d, dp + s), vD)), vs), d, dp + s);
  for (; s < n; ++s) dp[s] = prob[s] * (dp[s] - D) * scale;
  for (; s < P; ++s) dp[s] = 0.0f;
}

// Per KV head j, over the G = H/KV query heads of its group stacked as G·T rows (head-major),
// as matrices (FlashAttention's backward, unfused): P recomputed as softmax(scale·Q·Kᵀ)
// (the scores by GEMM, so they differ from the forward's row dot products by f32
// rounding only); dP = dO·Vᵀ, dS = P ⊙ (dP − D)·scale with D = do·o per row, dQ = dS·K,
// dK += dSᵀ·Q, dV += Pᵀ·dO run as four GEMMs per KV head (kernels/gemm.h, threaded
// inside), each G times taller than per query head: fewer calls, larger tiles. The row
// steps are split over the threads.
void CausalAttentionBackwardTarget(int num_threads, const float* q, const float* k, const float* v, const float* out,
                                   const float* dout, float* dq, float* dk, float* dv, size_t T, size_t start_pos,
                                   size_t H, size_t KV, size_t Dh, float* scratch) {
  const size_t G = H / KV, qs = H * Dh, kvs = KV * Dh;
  const size_t P = start_pos + T, R = G * T;  // R stacked rows: (head g of the group, token t)
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dh)));
  float* Kj = scratch;          // [P, Dh] the head's keys, gathered
  float* Vj = Kj + P * Dh;      // [P, Dh]
  float* dKj = Vj + P * Dh;     // [P, Dh]
  float* dVj = dKj + P * Dh;    // [P, Dh]
  float* Qg = dVj + P * Dh;     // [R, Dh]
  float* dOg = Qg + R * Dh;     // [R, Dh]
  float* dQg = dOg + R * Dh;    // [R, Dh]
  float* prob = dQg + R * Dh;   // [R, P]
  float* dp = prob + R * P;     // [R, P] dP, then dS
  const bool parallel = num_threads > 1 && R * P * Dh >= kMinParallelMacs;
  const long rows = static_cast<long>(R);
  using kernels::Trans;
  for (size_t j = 0; j < KV; ++j) {
    for (size_t s = 0; s < P; ++s) {
      std::copy_n(k + s * kvs + j * Dh, Dh, Kj + s * Dh);
      std::copy_n(v + s * kvs + j * Dh, Dh, Vj + s * Dh);
    }
    for (size_t g = 0; g < G; ++g) {
      const size_t i = j * G + g;
      for (size_t t = 0; t < T; ++t) {
        std::copy_n(q + t * qs + i * Dh, Dh, Qg + (g * T + t) * Dh);
        std::copy_n(dout + t * qs + i * Dh, Dh, dOg + (g * T + t) * Dh);
      }
    }
    // P = softmax(scale · Q·Kᵀ) over each row's visible positions: the scores as one GEMM
    // over the whole [R, P] block (the masked entries are computed and then zeroed), the
    // softmax row by row as the forward's SoftmaxRow.
    Gemm(num_threads, Trans::kNo, Trans::kYes, Qg, Kj, prob, R, P, Dh);  // S = Q·Kᵀ
#pragma omp parallel for num_threads(num_threads) schedule(static, 1) if (parallel)
    for (long r = 0; r < rows; ++r) {
      const size_t t = static_cast<size_t>(r) % T, n = start_pos + t + 1;
      float* row = prob + static_cast<size_t>(r) * P;
      ScaleRow(row, n, scale);
      SoftmaxRow(row, n);
      std::fill(row + n, row + P, 0.0f);
    }
    Gemm(num_threads, Trans::kNo, Trans::kYes, dOg, Vj, dp, R, P, Dh);  // dP = dO·Vᵀ
#pragma omp parallel for num_threads(num_threads) schedule(static, 1) if (parallel)
    for (long r = 0; r < rows; ++r) {
      const size_t rr = static_cast<size_t>(r), t = rr % T, i = j * G + rr / T;
      const float D = DotDh(dOg + rr * Dh, out + t * qs + i * Dh, Dh);
      AttentionDsRow(prob + rr * P, dp + rr * P, D, scale, start_pos + t + 1, P);
    }
    Gemm(num_threads, Trans::kNo, Trans::kNo, dp, Kj, dQg, R, Dh, P);          // dQ = dS·K
    Gemm(num_threads, Trans::kYes, Trans::kNo, dp, Qg, dKj, P, Dh, R);         // dK = dSᵀ·Q
    Gemm(num_threads, Trans::kYes, Trans::kNo, prob, dOg, dVj, P, Dh, R);      // dV = Pᵀ·dO
    for (size_t g = 0; g < G; ++g) {
      const size_t i = j * G + g;
      for (size_t t = 0; t < T; ++t) std::copy_n(dQg + (g * T + t) * Dh, Dh, dq + t * qs + i * Dh);
    }
    for (size_t s = 0; s < P; ++s)
      for (size_t x = 0; x < Dh; ++x) {
        dk[s * kvs + j * Dh + x] += dKj[s * Dh + x];
        dv[s * kvs + j * Dh + x] += dVj[s * Dh + x];
      }
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

namespace {

// The probabilities of one (token, head) row in double: p_s = softmax_s(q·k_s / sqrt(Dh))
// over n positions (k: the row's kv head in row 0, row stride kv_stride). Both oracles use it.
void ProbsRef(const float* qh, const float* k, size_t n, size_t kv_stride, size_t Dh, double* p) {
  double mx = -INFINITY, sum = 0.0;
  for (size_t s = 0; s < n; ++s) {
    double dot = 0.0;
    for (size_t d = 0; d < Dh; ++d) dot += static_cast<double>(qh[d]) * k[s * kv_stride + d];
    p[s] = dot / std::sqrt(static_cast<double>(Dh));
    mx = std::max(mx, p[s]);
  }
  for (size_t s = 0; s < n; ++s) sum += (p[s] = std::exp(p[s] - mx));
  for (size_t s = 0; s < n; ++s) p[s] /= sum;
}

}  // namespace


HWY_EXPORT(CausalAttentionTarget);
HWY_EXPORT(CausalAttentionBackwardTarget);

size_t CausalAttentionBackwardScratch(size_t T, size_t start_pos, size_t H, size_t KV, size_t Dh) noexcept {
  const size_t P = start_pos + T, R = (H / KV) * T;
  return 4 * P * Dh + 3 * R * Dh + 2 * R * P;
}

void CausalAttentionBackward(int num_threads, const float* q, const float* k, const float* v, const float* out,
                             const float* dout, float* dq, float* dk, float* dv, size_t T, size_t start_pos, size_t H,
                             size_t KV, size_t Dh, float* scratch) noexcept {
  NB_DYNAMIC_DISPATCH(CausalAttentionBackwardTarget)(num_threads, q, k, v, out, dout, dq, dk, dv, T, start_pos, H, KV,
                                                     Dh, scratch);
}

void CausalAttentionBackwardRef(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                float* dk, float* dv, size_t T, size_t start_pos, size_t H, size_t KV,
                                size_t Dh) noexcept {
  const size_t group = H / KV, kv_stride = KV * Dh;
  const size_t P = start_pos + T;
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  std::vector<double> p(P), dkk(P * kv_stride, 0.0), dvv(P * kv_stride, 0.0);
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < H; ++i) {
      const float* qh = q + t * H * Dh + i * Dh;
      const float* doh = dout + t * H * Dh + i * Dh;
      const size_t off = (i / group) * Dh, n = start_pos + t + 1;
      ProbsRef(qh, k + off, n, kv_stride, Dh, p.data());
      // D = do·o with o = Σ p_s v_s, in double.
      double D = 0.0;
      for (size_t d = 0; d < Dh; ++d) {
        double o = 0.0;
        for (size_t s = 0; s < n; ++s) o += p[s] * v[s * kv_stride + off + d];
        D += static_cast<double>(doh[d]) * o;
      }
      std::vector<double> dqh(Dh, 0.0);
      for (size_t s = 0; s < n; ++s) {
        double dp = 0.0;
        for (size_t d = 0; d < Dh; ++d) dp += static_cast<double>(doh[d]) * v[s * kv_stride + off + d];
        const double ds = p[s] * (dp - D) * scale;
        for (size_t d = 0; d < Dh; ++d) {
          dqh[d] += ds * k[s * kv_stride + off + d];
          dkk[s * kv_stride + off + d] += ds * qh[d];
          dvv[s * kv_stride + off + d] += p[s] * doh[d];
        }
      }
      for (size_t d = 0; d < Dh; ++d) dq[t * H * Dh + i * Dh + d] = static_cast<float>(dqh[d]);
    }
  }
  for (size_t e = 0; e < P * kv_stride; ++e) {
    dk[e] = static_cast<float>(dk[e] + dkk[e]);
    dv[e] = static_cast<float>(dv[e] + dvv[e]);
  }
}

void CausalAttention(int num_threads, const float* q, const float* k, const float* v, float* out, size_t T,
                     size_t start_pos, size_t H, size_t KV, size_t Dh, float* scratch) noexcept {
  NB_DYNAMIC_DISPATCH(CausalAttentionTarget)(num_threads, q, k, v, out, T, start_pos, H, KV, Dh, scratch);
}

void CausalAttentionRef(const float* q, const float* k, const float* v, float* out, size_t T, size_t start_pos,
                        size_t H, size_t KV, size_t Dh) noexcept {
  const size_t group = H / KV, kv_stride = KV * Dh;
  std::vector<double> p(start_pos + T), o(Dh);
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < H; ++i) {
      const float* qh = q + t * H * Dh + i * Dh;
      const size_t off = (i / group) * Dh, n = start_pos + t + 1;
      ProbsRef(qh, k + off, n, kv_stride, Dh, p.data());
      std::fill(o.begin(), o.end(), 0.0);
      for (size_t s = 0; s < n; ++s)
        for (size_t d = 0; d < Dh; ++d) o[d] += p[s] * v[s * kv_stride + off + d];
      for (size_t d = 0; d < Dh; ++d) out[t * H * Dh + i * Dh + d] = static_cast<float>(o[d]);
    }
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
