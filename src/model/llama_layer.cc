// LayerForward / LayerBackward: the decoder layer's ops in order, each a kernel call.
#include "model/llama_layer.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/convert.h"
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

const float* F32(const ConstTensorView& t) { return static_cast<const float*>(t.data); }

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
      std::memcpy(out + r * D, F32(embed) + row * D, D * sizeof(float));
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
  // Attention block.
  kernels::RmsNorm(a.x, F32(w.attn_norm), a.a1, d.N, d.D, eps);
  const LinearOut qkv[] = {{&w.wq, a.q}, {&w.wk, a.k}, {&w.wv, a.v}};
  LinearForwardGroup(env.call, a.a1, d.N, qkv);
  if (c.attention_bias) {
    AddBias(a.q, F32(w.bq), d.N, d.QD);
    AddBias(a.k, F32(w.bk), d.N, d.KVD);
    AddBias(a.v, F32(w.bv), d.N, d.KVD);
  }
  for (size_t r = 0; r < d.N; ++r) {
    const size_t t = r % d.T;
    kernels::Rope(c.rope_layout, a.q + r * d.QD, d.H, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
    kernels::Rope(c.rope_layout, a.k + r * d.KVD, d.KV, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
  }
  for (size_t b = 0; b < batch.B; ++b) {
    kernels::CausalAttention(env.call.threads, a.q + b * d.T * d.QD, SeqRows(a.k, batch, b, d.KVD),
                             SeqRows(a.v, batch, b, d.KVD), a.att + b * d.T * d.QD, d.T, batch.start_pos, d.H, d.KV,
                             d.Dh, env.scores);
  }
  LinearForward(env.call, w.wo, a.att, a.tmp, d.N);
  Add(a.x, a.tmp, a.mid, d.N * d.D);
  // MLP block: down(silu(gate(a2)) · up(a2)).
  kernels::RmsNorm(a.mid, F32(w.ffn_norm), a.a2, d.N, d.D, eps);
  const LinearOut gate_up[] = {{&w.w_gate, a.gate}, {&w.w_up, a.up}};
  LinearForwardGroup(env.call, a.a2, d.N, gate_up);
  kernels::SwiGlu(a.gate, a.up, a.act, d.N * d.F);
  LinearForward(env.call, w.w_down, a.act, a.tmp, d.N);
  Add(a.mid, a.tmp, a.out, d.N * d.D);
}

size_t LayerBackwardScratch(const LlamaConfig& c, const Batch& batch, int threads) {
  const size_t N = batch.rows(), D = static_cast<size_t>(c.hidden_size), F = static_cast<size_t>(c.intermediate_size);
  const size_t QD = static_cast<size_t>(c.QDim()), KVD = static_cast<size_t>(c.KvDim());
  return 2 * N * F + 2 * N * D + 2 * N * QD + 2 * N * KVD + kernels::CausalAttentionBackwardScratch(batch.T, 0, static_cast<size_t>(c.HeadDim())) + D;
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
  float* dg_unused = att_scratch + kernels::CausalAttentionBackwardScratch(d.T, 0, d.Dh);  // [D] frozen norms

  // MLP block, from out = mid + down(act).
  LinearBackward(call, w.w_down, a.act, dh, dgate, false, g.w_down, d.N);
  kernels::SwiGluBackward(a.gate, a.up, dgate, dgate, dup, d.N * d.F);
  LinearBackward(call, w.w_gate, a.a2, dgate, da, false, g.w_gate, d.N);
  LinearBackward(call, w.w_up, a.a2, dup, da, true, g.w_up, d.N);
  std::fill_n(dg_unused, d.D, 0.0f);
  kernels::RmsNormBackward(a.mid, F32(w.ffn_norm), da, dnorm, g.ffn_norm ? g.ffn_norm : dg_unused, d.N, d.D, eps);
  Add(dh, dnorm, dh, d.N * d.D);  // dh = d(mid)

  // Attention block, from mid = x + o_proj(att).
  LinearBackward(call, w.wo, a.att, dh, datt, false, g.wo, d.N);
  std::fill_n(dk, 2 * d.N * d.KVD, 0.0f);  // dk and dv accumulate
  for (size_t b = 0; b < env.batch.B; ++b) {
    const size_t qo = b * d.T * d.QD, ko = b * d.T * d.KVD;
    kernels::CausalAttentionBackward(call.threads, a.q + qo, a.k + ko, a.v + ko, a.att + qo, datt + qo, dq + qo,
                                     dk + ko, dv + ko, d.T, 0, d.H, d.KV, d.Dh, att_scratch);
  }
  for (size_t r = 0; r < d.N; ++r) {
    const size_t t = r % d.T;
    kernels::RopeBackward(c.rope_layout, dq + r * d.QD, d.H, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
    kernels::RopeBackward(c.rope_layout, dk + r * d.KVD, d.KV, d.Dh, env.cos + t * d.half, env.sin + t * d.half);
  }
  if (c.attention_bias) {
    if (g.bq) BiasGrad(dq, g.bq, d.N, d.QD);
    if (g.bk) BiasGrad(dk, g.bk, d.N, d.KVD);
    if (g.bv) BiasGrad(dv, g.bv, d.N, d.KVD);
  }
  LinearBackward(call, w.wq, a.a1, dq, da, false, g.wq, d.N);
  LinearBackward(call, w.wk, a.a1, dk, da, true, g.wk, d.N);
  LinearBackward(call, w.wv, a.a1, dv, da, true, g.wv, d.N);
  kernels::RmsNormBackward(a.x, F32(w.attn_norm), da, dnorm, g.attn_norm ? g.attn_norm : dg_unused, d.N, d.D, eps);
  Add(dh, dnorm, dh, d.N * d.D);  // dh = d(x)
}

}  // namespace nibble::model
