// Causal GQA attention: f32 scores and weighted sums per (token, head), the softmax
// kernel in between, OpenMP over the T·H independent rows; and the double oracle.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/softmax.h"

namespace nibble::kernels {
namespace {

// Below this many multiply-adds (scores plus weighted sum) one thread beats waking a team.
constexpr size_t kMinParallelMacs = size_t{1} << 15;

// One (token t, head i) row: scores over positions 0 .. n-1, then out_h = Σ p_s v_s.
void AttendRow(const float* qh, const float* k, const float* v, float* oh, size_t n, size_t kv_stride,
               size_t kv_off, size_t Dh, float scale, float* scores) {
  for (size_t s = 0; s < n; ++s) {
    const float* ks = k + s * kv_stride + kv_off;
    float dot = 0.0f;
    for (size_t d = 0; d < Dh; ++d) dot += qh[d] * ks[d];
    scores[s] = dot * scale;
  }
  Softmax(scores, n);
  std::fill(oh, oh + Dh, 0.0f);
  for (size_t s = 0; s < n; ++s) {
    const float* vs = v + s * kv_stride + kv_off;
    const float p = scores[s];
    for (size_t d = 0; d < Dh; ++d) oh[d] += p * vs[d];
  }
}

}  // namespace

void CausalAttention(int num_threads, const float* q, const float* k, const float* v, float* out, size_t T,
                     size_t start_pos, size_t H, size_t KV, size_t Dh, float* scratch) noexcept {
  const size_t group = H / KV;
  const size_t kv_stride = KV * Dh;
  const size_t P = start_pos + T;
  // HF scales by head_dim ** -0.5; the f32 rounding of the factor is the only difference.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dh)));
  const long rows = static_cast<long>(T * H);
  const bool parallel = num_threads > 1 && T * H * P * Dh * 2 >= kMinParallelMacs;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (parallel)
  for (long r = 0; r < rows; ++r) {
    const size_t t = static_cast<size_t>(r) / H, i = static_cast<size_t>(r) % H;
    float* scores = scratch + static_cast<size_t>(omp_get_thread_num()) * P;
    AttendRow(q + t * H * Dh + i * Dh, k, v, out + t * H * Dh + i * Dh, start_pos + t + 1, kv_stride,
              (i / group) * Dh, Dh, scale, scores);
  }
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
