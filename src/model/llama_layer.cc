// LayerForward / LayerBackward: the decoder layer's ops in order, each a kernel call.
#include "model/llama_layer.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/parallel.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace nibble::model {
namespace {

struct Dims {
  size_t N, T, D, F, H, KV, Dh, QD, KVD, half;
  explicit Dims(const LayerEnv& env) {
    const LlamaConfig& c = *env.config;
    N = env.batch.rows();
    T = env.batch.T;
    D = static_cast<size_t>(c.hidden_size);
    F = static_cast<size_t>(c.intermediate_size);
    H = static_cast<size_t>(c.num_attention_heads);
    KV = static_cast<size_t>(c.num_key_value_heads);
    Dh = static_cast<size_t>(c.HeadDim());
    QD = H * Dh;
    KVD = KV * Dh;
    half = Dh / 2;
  }
};


// y: [rows, n] += b: [n] on every row.
void AddBias(float* y, const float* b, size_t rows, size_t n) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) y[r * n + i] += b[i];
}

// db: [n] += the column sums of dy: [rows, n].
void BiasGrad(const float* dy, float* db, size_t rows, size_t n) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) db[i] += dy[r * n + i];
}

// out = a + b elementwise (out may equal a or b): the residual connection.
void Add(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// Below this many elements a row op runs on the calling thread (waking the team costs more).
constexpr size_t kMinParallelElems = size_t{1} << 15;

// Rows [0, n) of `row_elems` elements each, split into contiguous chunks over one parallel
// region (kernels::ParallelChunks), or run on the calling thread when the op is too small
// to wake the team: fn(r0, r1, thread, threads). Every row op below computes a row the same
// way whatever the split (the kernels' tails use the vector math on padded lanes), so the
// results do not depend on the thread count, except a trainable norm's weight gradient,
// summed per thread and then across threads in thread order.
template <class Fn>
void ForRowChunks(int threads, size_t n, size_t row_elems, const Fn& fn) {
  const bool small = n < 2 || n * row_elems < kMinParallelElems;
  kernels::ParallelChunks(small ? 1 : threads, n, fn);
}

// out = a + b, then y = RmsNorm(out) · g, over rows [r0, r1) of width D (the residual add
// and the next norm in one pass over the rows).
void AddNormRows(const float* a, const float* b, float* out, const float* g, float* y, size_t r0, size_t r1, size_t D,
                 float eps) {
  Add(a + r0 * D, b + r0 * D, out + r0 * D, (r1 - r0) * D);
  kernels::RmsNorm(out + r0 * D, g, y + r0 * D, r1 - r0, D, eps);
}

// dx_norm = RmsNormBackward(x, g, dy) over all rows, then dh += dx_norm: the norm's
// backward and the residual's gradient in one parallel region. dg (a trainable norm's
// gradient, or null) accumulates the per-thread partial sums in thread order. partial:
// [threads · D] scratch; dnorm: [N, D] scratch.
void NormBackwardAddRows(int threads, const float* x, const float* g, const float* dy, float* dnorm, float* dh,
                         float* dg, float* partial, size_t N, size_t D, float eps) {
  int used = 1;
  ForRowChunks(threads, N, D, [&](size_t r0, size_t r1, int t, int nt) {
    if (t == 0) used = nt;
    float* pd = partial + static_cast<size_t>(t) * D;
    std::fill_n(pd, D, 0.0f);
    kernels::RmsNormBackward(x + r0 * D, g, dy + r0 * D, dnorm + r0 * D, pd, r1 - r0, D, eps);
    Add(dh + r0 * D, dnorm + r0 * D, dh + r0 * D, (r1 - r0) * D);
  });
  if (dg == nullptr) return;
  for (int t = 0; t < used; ++t)
    for (size_t i = 0; i < D; ++i) dg[i] += partial[static_cast<size_t>(t) * D + i];
}

// The first key row of sequence b (see LayerActivations::k).
const float* SeqRows(const float* rows, const Batch& batch, size_t b, size_t width) {
  return rows + (b * batch.T) * width - batch.start_pos * width;
}

}  // namespace

void EmbedRows(const ConstTensorView& embed, const int32_t* tokens, size_t n, size_t D, float* out) {
  for (size_t r = 0; r < n; ++r) {
    const size_t row = static_cast<size_t>(tokens[r]);
    if (embed.dtype == DType::kBF16) {
      kernels::ConvertToF32(DType::kBF16, static_cast<const uint16_t*>(embed.data) + row * D, out + r * D, D);
    } else {
      std::memcpy(out + r * D, embed.f32() + row * D, D * sizeof(float));
    }
  }
}

void EmbedRowsBackward(const int32_t* tokens, const float* dh, size_t n, size_t D, float* dembed) {
  for (size_t r = 0; r < n; ++r) {
    float* row = dembed + static_cast<size_t>(tokens[r]) * D;
    for (size_t i = 0; i < D; ++i) row[i] += dh[r * D + i];
  }
}

void RopeTables(const float* inv_freq, size_t half, size_t start_pos, size_t T, float* cos, float* sin) {
  for (size_t t = 0; t < T; ++t)
    kernels::RopeAnglesFromInvFreq(static_cast<int64_t>(start_pos + t), inv_freq, half, cos + t * half, sin + t * half);
}

void LayerForward(const LayerEnv& env, const LlamaLayerWeights& w, const LayerActivations& a) {
  const Dims d(env);
  const LlamaConfig& c = *env.config;
  const float eps = c.rms_norm_eps;
  const Batch& batch = env.batch;
  const int threads = env.call.threads;
  // Attention block.
  ForRowChunks(threads, d.N, d.D, [&](size_t r0, size_t r1, int, int) {
    kernels::RmsNorm(a.x + r0 * d.D, w.attn_norm.f32(), a.a1 + r0 * d.D, r1 - r0, d.D, eps);
  });
  const LinearOut qkv[] = {{&w.wq, a.q}, {&w.wk, a.k}, {&w.wv, a.v}};
  LinearForwardGroup(env.call, a.a1, d.N, qkv);
  if (c.attention_bias) {
    AddBias(a.q, w.bq.f32(), d.N, d.QD);
    AddBias(a.k, w.bk.f32(), d.N, d.KVD);
    AddBias(a.v, w.bv.f32(), d.N, d.KVD);
  }
  ForRowChunks(threads, d.N, d.QD + d.KVD, [&](size_t r0, size_t r1, int, int) {
    for (size_t r = r0; r < r1; ++r) {
      const size_t t = r % d.T;
      kernels::Rope(c.rope_layout, a.q + r * d.QD, d.H, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
      kernels::Rope(c.rope_layout, a.k + r * d.KVD, d.KV, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
    }
  });
  for (size_t b = 0; b < batch.B; ++b) {
    kernels::CausalAttention(env.call.threads, a.q + b * d.T * d.QD, SeqRows(a.k, batch, b, d.KVD),
                             SeqRows(a.v, batch, b, d.KVD), a.att + b * d.T * d.QD, d.T, batch.start_pos, d.H, d.KV,
                             d.Dh, env.scores);
  }
  LinearForward(env.call, w.wo, a.att, a.tmp, d.N);
  // mid = x + o_proj(att); MLP block: down(silu(gate(a2)) · up(a2)) with a2 = norm(mid).
  ForRowChunks(threads, d.N, d.D, [&](size_t r0, size_t r1, int, int) {
    AddNormRows(a.x, a.tmp, a.mid, w.ffn_norm.f32(), a.a2, r0, r1, d.D, eps);
  });
  const LinearOut gate_up[] = {{&w.w_gate, a.gate}, {&w.w_up, a.up}};
  LinearForwardGroup(env.call, a.a2, d.N, gate_up);
  ForRowChunks(threads, d.N, d.F, [&](size_t r0, size_t r1, int, int) {
    kernels::SwiGlu(a.gate + r0 * d.F, a.up + r0 * d.F, a.act + r0 * d.F, (r1 - r0) * d.F);
  });
  LinearForward(env.call, w.w_down, a.act, a.tmp, d.N);
  ForRowChunks(threads, d.N, d.D, [&](size_t r0, size_t r1, int, int) {
    Add(a.mid + r0 * d.D, a.tmp + r0 * d.D, a.out + r0 * d.D, (r1 - r0) * d.D);
  });
}

size_t LayerBackwardScratch(const LlamaConfig& c, const Batch& batch, int threads) {
  const size_t N = batch.rows(), D = static_cast<size_t>(c.hidden_size), F = static_cast<size_t>(c.intermediate_size);
  const size_t QD = static_cast<size_t>(c.QDim()), KVD = static_cast<size_t>(c.KvDim());
  return 2 * N * F + 2 * N * D + 2 * N * QD + 2 * N * KVD +
         kernels::CausalAttentionBackwardScratch(batch.T, 0, static_cast<size_t>(c.num_attention_heads),
                                                 static_cast<size_t>(c.num_key_value_heads),
                                                 static_cast<size_t>(c.HeadDim())) +
         static_cast<size_t>(std::max(1, threads)) * D;
}

void LayerBackward(const LayerEnv& env, const LlamaLayerWeights& w, const LayerActivations& a, const LayerGrads& g,
                   float* dh, float* scratch) {
  const Dims d(env);
  const LlamaConfig& c = *env.config;
  const float eps = c.rms_norm_eps;
  const LinearCall& call = env.call;
  float* dgate = scratch;             // [N, F] d(act), then d(gate)
  float* dup = dgate + d.N * d.F;     // [N, F]
  float* da = dup + d.N * d.F;        // [N, D] d(a2), then d(a1)
  float* dnorm = da + d.N * d.D;      // [N, D] a norm's input gradient before the residual add
  float* datt = dnorm + d.N * d.D;    // [N, H·Dh]
  float* dq = datt + d.N * d.QD;      // [N, H·Dh]
  float* dk = dq + d.N * d.QD;        // [N, KV·Dh]
  float* dv = dk + d.N * d.KVD;       // [N, KV·Dh]
  float* att_scratch = dv + d.N * d.KVD;  // CausalAttentionBackwardScratch
  float* dg_partial = att_scratch + kernels::CausalAttentionBackwardScratch(d.T, 0, d.H, d.KV, d.Dh);  // [threads, D]
  const int threads = call.threads;

  // MLP block, from out = mid + down(act).
  LinearBackward(call, w.w_down, a.act, dh, dgate, false, g.w_down, d.N);
  ForRowChunks(threads, d.N, d.F, [&](size_t r0, size_t r1, int, int) {
    const size_t o = r0 * d.F;
    kernels::SwiGluBackward(a.gate + o, a.up + o, dgate + o, dgate + o, dup + o, (r1 - r0) * d.F);
  });
  LinearBackward(call, w.w_gate, a.a2, dgate, da, false, g.w_gate, d.N);
  LinearBackward(call, w.w_up, a.a2, dup, da, true, g.w_up, d.N);
  // dh = d(mid): the norm's input gradient plus the residual's.
  NormBackwardAddRows(threads, a.mid, w.ffn_norm.f32(), da, dnorm, dh, g.ffn_norm, dg_partial, d.N, d.D, eps);

  // Attention block, from mid = x + o_proj(att).
  LinearBackward(call, w.wo, a.att, dh, datt, false, g.wo, d.N);
  std::fill_n(dk, 2 * d.N * d.KVD, 0.0f);  // dk and dv accumulate
  for (size_t b = 0; b < env.batch.B; ++b) {
    const size_t qo = b * d.T * d.QD, ko = b * d.T * d.KVD;
    kernels::CausalAttentionBackward(call.threads, a.q + qo, a.k + ko, a.v + ko, a.att + qo, datt + qo, dq + qo,
                                     dk + ko, dv + ko, d.T, 0, d.H, d.KV, d.Dh, att_scratch);
  }
  ForRowChunks(threads, d.N, d.QD + d.KVD, [&](size_t r0, size_t r1, int, int) {
    for (size_t r = r0; r < r1; ++r) {
      const size_t t = r % d.T;
      kernels::RopeBackward(c.rope_layout, dq + r * d.QD, d.H, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
      kernels::RopeBackward(c.rope_layout, dk + r * d.KVD, d.KV, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
    }
  });
  if (c.attention_bias) {
    if (g.bq) BiasGrad(dq, g.bq, d.N, d.QD);
    if (g.bk) BiasGrad(dk, g.bk, d.N, d.KVD);
    if (g.bv) BiasGrad(dv, g.bv, d.N, d.KVD);
  }
  LinearBackward(call, w.wq, a.a1, dq, da, false, g.wq, d.N);
  LinearBackward(call, w.wk, a.a1, dk, da, true, g.wk, d.N);
  LinearBackward(call, w.wv, a.a1, dv, da, true, g.wv, d.N);
  // dh = d(x).
  NormBackwardAddRows(threads, a.x, w.attn_norm.f32(), da, dnorm, dh, g.attn_norm, dg_partial, d.N, d.D, eps);
}

}  // namespace nibble::model
