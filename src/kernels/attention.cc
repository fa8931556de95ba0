// Causal GQA attention: Highway dispatch of the per-target row kernel (attention-inl.h),
// OpenMP over the T·H independent (token, head) rows; and the double oracle.
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

void CausalAttentionBackwardTarget(int num_threads, const float* q, const float* k, const float* v, const float* out,
                                   const float* dout, float* dq, float* dk, float* dv, size_t T, size_t start_pos,
                                   size_t H, size_t KV, size_t Dh, float* scratch) {
  const size_t group = H / KV;
  const size_t kv_stride = KV * Dh;
  const size_t P = start_pos + T;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dh)));
  const bool parallel = num_threads > 1 && KV > 1 && T * H * P * Dh * 4 >= kMinParallelMacs;
#pragma omp parallel for num_threads(num_threads) schedule(static, 1) if (parallel)
  for (long j = 0; j < static_cast<long>(KV); ++j) {
    const size_t off = static_cast<size_t>(j) * Dh;
    float* p = scratch + static_cast<size_t>(omp_get_thread_num()) * P;
    for (size_t t = 0; t < T; ++t)
      for (size_t i = static_cast<size_t>(j) * group; i < (static_cast<size_t>(j) + 1) * group; ++i) {
        const size_t row = t * H * Dh + i * Dh;
        AttendRowBackwardImpl(q + row, k + off, v + off, out + row, dout + row, dq + row, dk + off, dv + off,
                              start_pos + t + 1, kv_stride, Dh, scale, p);
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
