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

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(CausalAttentionTarget);

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
      double mx = -INFINITY, sum = 0.0;
      for (size_t s = 0; s < n; ++s) {
        double dot = 0.0;
        for (size_t d = 0; d < Dh; ++d) dot += static_cast<double>(qh[d]) * k[s * kv_stride + off + d];
        p[s] = dot / std::sqrt(static_cast<double>(Dh));
        mx = std::max(mx, p[s]);
      }
      for (size_t s = 0; s < n; ++s) sum += (p[s] = std::exp(p[s] - mx));
      std::fill(o.begin(), o.end(), 0.0);
      for (size_t s = 0; s < n; ++s)
        for (size_t d = 0; d < Dh; ++d) o[d] += p[s] / sum * v[s * kv_stride + off + d];
      for (size_t d = 0; d < Dh; ++d) out[t * H * Dh + i * Dh + d] = static_cast<float>(o[d]);
    }
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
