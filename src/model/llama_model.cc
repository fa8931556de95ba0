// LlamaModel::Forward: embedding, L decoder layers (model/llama_layer.h, over the KV
// cache), final norm and classifier (spec §4.2).
#include "model/llama_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "model/linear.h"
#include "model/llama_layer.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {


}  // namespace

LlamaModel::LlamaModel(const LlamaConfig& config, LlamaWeights weights, const quant::QLinearPolicy& quant)
    : config_(config), weights_(std::move(weights)), quant_(quant) {
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

  // ---- scratch, one counted block; the layer's activations share it (not kept) ----
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
  float* h = bufs[0];  // [T, D] residual stream: every layer's x, mid and out
  float* a = bufs[1];  // [T, D] a1, a2 and the final norm's output
  float* cos = bufs[7];
  float* sin = bufs[8];
  LayerActivations acts;
  acts.x = acts.mid = acts.out = h;
  acts.a1 = acts.a2 = a;
  acts.q = bufs[2];
  acts.att = bufs[3];
  acts.tmp = bufs[4];
  acts.gate = acts.act = bufs[5];
  acts.up = bufs[6];

  EmbedRows(weights_.embed, tokens.data(), T, D, h);
  RopeTables(inv_freq_.data(), half, static_cast<size_t>(start_pos), T, cos, sin);

  const float eps = c.rms_norm_eps;
  const LinearCall call{threads, &ctx.allocator(), false, 0, quant_};
  const LayerEnv env{&c, call, Batch{1, T, static_cast<size_t>(start_pos)}, cos, sin, bufs[9]};
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    acts.k = cache.k(static_cast<int64_t>(l)) + static_cast<size_t>(start_pos) * KVD;  // [T, KV*Dh] new rows
    acts.v = cache.v(static_cast<int64_t>(l)) + static_cast<size_t>(start_pos) * KVD;
    LayerForward(env, weights_.layers[l], acts);
  }

  // Final norm and classifier, on the last row only unless every row's logits are asked.
  const size_t first = mode == LogitsMode::kAll ? 0 : T - 1;
  const size_t rows = T - first;
  kernels::RmsNorm(h + first * D, weights_.final_norm.f32(), a, rows, D, eps);
  LinearForward(call, weights_.Classifier(c), a, logits.data(), rows);
}

}  // namespace nibble::model
