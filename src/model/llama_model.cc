// LlamaModel::Forward: embedding, L decoder layers (RMSNorm, q/k/v projections with
// optional bias, RoPE, causal GQA attention over the KV cache, output projection,
// RMSNorm, SwiGLU MLP, residuals), final norm and classifier (spec §4.2).
#include "model/llama_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "nibble/error.h"
#include "model/linear.h"

namespace nibble::model {
namespace {

const float* F32(const ConstTensorView& t) { return static_cast<const float*>(t.data); }

// Row `row` of the [V, D] embedding (f32 or bf16, widened exactly) into out: [D].
void EmbedRow(const ConstTensorView& embed, size_t row, size_t D, float* out) {
  if (embed.dtype == DType::kBF16) {
    kernels::ConvertToF32(DType::kBF16, static_cast<const uint16_t*>(embed.data) + row * D, out, D);
  } else {
    std::memcpy(out, F32(embed) + row * D, D * sizeof(float));
  }
}

// y: [T, N] += b: [N] on every row.
void AddBias(float* y, const float* b, size_t T, size_t N) {
  for (size_t t = 0; t < T; ++t)
    for (size_t n = 0; n < N; ++n) y[t * N + n] += b[n];
}

// h: [n] += d: [n] (residual connection).
void AddInPlace(float* h, const float* d, size_t n) {
  for (size_t i = 0; i < n; ++i) h[i] += d[i];
}

}  // namespace

LlamaModel::LlamaModel(const LlamaConfig& config, LlamaWeights weights)
    : config_(config), weights_(std::move(weights)) {
  config_.Validate();
  weights_.Validate(config_);
  inv_freq_ = config_.RopeInvFreq();
}

void LlamaModel::Forward(ExecContext& ctx, KvCache& cache, std::span<const int32_t> tokens, int64_t start_pos,
                         std::span<float> logits, LogitsMode mode) const {
  const LlamaConfig& c = config_;
  const size_t T = tokens.size();
  const size_t D = static_cast<size_t>(c.hidden_size), F = static_cast<size_t>(c.intermediate_size);
  const size_t V = static_cast<size_t>(c.vocab_size), Dh = static_cast<size_t>(c.HeadDim());
  const size_t H = static_cast<size_t>(c.num_attention_heads), KV = static_cast<size_t>(c.num_key_value_heads);
  const size_t QD = H * Dh, KVD = KV * Dh;
  // ---- checks at the layer boundary; the kernels below never validate ----
  if (T == 0) throw ShapeError("Llama forward: no tokens given");
  if (start_pos < 0) throw ShapeError(fmt::format("Llama forward: start_pos must be >= 0, got {}", start_pos));
  if (start_pos + static_cast<int64_t>(T) > cache.max_seq())
    throw ShapeError(fmt::format("Llama forward: positions {}..{} exceed the KV cache length {}", start_pos,
                                 start_pos + static_cast<int64_t>(T) - 1, cache.max_seq()));
  if (cache.num_layers() != c.num_hidden_layers || cache.kv_dim() != static_cast<int64_t>(KVD))
    throw ShapeError(fmt::format("Llama forward: KV cache is [{} layers, {}], model needs [{} layers, {}]",
                                 cache.num_layers(), cache.kv_dim(), c.num_hidden_layers, KVD));
  const size_t want_logits = mode == LogitsMode::kAll ? T * V : V;
  if (logits.size() != want_logits)
    throw ShapeError(fmt::format("Llama forward: logits buffer holds {} floats, expected {}", logits.size(),
                                 want_logits));
  for (size_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || static_cast<size_t>(tokens[t]) >= V)
      throw ShapeError(fmt::format("Llama forward: token {} at index {} is outside the vocabulary [0, {})",
                                   tokens[t], t, V));
  }

  // ---- scratch, one counted block: ----
  const int threads = std::max(1, ctx.num_threads());
  const size_t P = static_cast<size_t>(start_pos) + T;  // positions attended by the last token
  const size_t half = Dh / 2;
  const size_t sizes[] = {T * D, T * D, T * QD, T * QD, T * D, T * F, T * F, T * half, T * half,
                          static_cast<size_t>(threads) * P};
  size_t total = 0;
  for (size_t s : sizes) total += s;
  Tensor scratch(ctx.allocator(), DType::kF32, Shape{static_cast<int64_t>(total)});
  float* cursor = static_cast<float*>(scratch.data());
  float* bufs[std::size(sizes)];
  for (size_t i = 0; i < std::size(sizes); ++i) {
    bufs[i] = cursor;
    cursor += sizes[i];
  }
  float* h = bufs[0];      // [T, D] residual stream
  float* a = bufs[1];      // [T, D] normalised input of a sublayer
  float* q = bufs[2];      // [T, H*Dh] queries
  float* att = bufs[3];    // [T, H*Dh] attention output, heads concatenated
  float* tmp = bufs[4];    // [T, D] sublayer output before the residual add
  float* gate = bufs[5];   // [T, F] gate projection, then silu(gate)·up
  float* up = bufs[6];     // [T, F] up projection
  float* cos = bufs[7];    // [T, Dh/2] RoPE cos per position
  float* sin = bufs[8];    // [T, Dh/2] RoPE sin per position
  float* scores = bufs[9]; // [threads, P] attention score rows

  for (size_t t = 0; t < T; ++t) {
    EmbedRow(weights_.embed, static_cast<size_t>(tokens[t]), D, h + t * D);
    kernels::RopeAnglesFromInvFreq(start_pos + static_cast<int64_t>(t), inv_freq_.data(), half, cos + t * half,
                                   sin + t * half);
  }

  const float eps = c.rms_norm_eps;
  const LinearCall call{threads, &ctx.allocator()};
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const LlamaLayerWeights& w = weights_.layers[l];
    float* k_rows = cache.k(static_cast<int64_t>(l)) + static_cast<size_t>(start_pos) * KVD;  // [T, KV*Dh]
    float* v_rows = cache.v(static_cast<int64_t>(l)) + static_cast<size_t>(start_pos) * KVD;  // [T, KV*Dh]
    // Attention block.
    kernels::RmsNorm(h, F32(w.attn_norm), a, T, D, eps);
    const LinearOut qkv[] = {{&w.wq, q}, {&w.wk, k_rows}, {&w.wv, v_rows}};
    LinearForwardGroup(call, a, T, qkv);
    if (c.attention_bias) {
      AddBias(q, F32(w.bq), T, QD);
      AddBias(k_rows, F32(w.bk), T, KVD);
      AddBias(v_rows, F32(w.bv), T, KVD);
    }
    for (size_t t = 0; t < T; ++t) {
      kernels::Rope(c.rope_layout, q + t * QD, H, Dh, cos + t * half, sin + t * half);
      kernels::Rope(c.rope_layout, k_rows + t * KVD, KV, Dh, cos + t * half, sin + t * half);
    }
    kernels::CausalAttention(threads, q, cache.k(static_cast<int64_t>(l)), cache.v(static_cast<int64_t>(l)), att, T,
                             static_cast<size_t>(start_pos), H, KV, Dh, scores);
    LinearForward(call, w.wo, att, tmp, T);
    AddInPlace(h, tmp, T * D);
    // MLP block: down(silu(gate(m)) · up(m)).
    kernels::RmsNorm(h, F32(w.ffn_norm), a, T, D, eps);
    const LinearOut gate_up[] = {{&w.w_gate, gate}, {&w.w_up, up}};
    LinearForwardGroup(call, a, T, gate_up);
    kernels::SwiGlu(gate, up, gate, T * F);
    LinearForward(call, w.w_down, gate, tmp, T);
    AddInPlace(h, tmp, T * D);
  }

  // Final norm and classifier, on the last row only unless every row's logits are asked.
  const size_t first = mode == LogitsMode::kAll ? 0 : T - 1;
  const size_t rows = T - first;
  kernels::RmsNorm(h + first * D, F32(weights_.final_norm), a, rows, D, eps);
  LinearForward(call, weights_.Classifier(c), a, logits.data(), rows);
}

}  // namespace nibble::model
