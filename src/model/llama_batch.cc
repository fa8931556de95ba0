// ForwardBatch / BackwardBatch: embedding, LayerForward per layer, final norm and
// classifier; then the same in reverse.
#include "model/llama_batch.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/check.h"
#include "kernels/rmsnorm.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {


}  // namespace

float*& ModelGrads::Slot(const RoleAt& r) {
  if (r.role->per_layer) return layers[static_cast<size_t>(r.layer)].*(r.role->layer_grad);
  return this->*(r.role->top_grad);
}

size_t BatchActivations::ActivationFloats(const LlamaConfig& c, const Batch& batch, int threads, bool checkpoint) {
  const size_t N = batch.rows(), D = static_cast<size_t>(c.hidden_size), F = static_cast<size_t>(c.intermediate_size);
  const size_t QD = static_cast<size_t>(c.QDim()), KVD = static_cast<size_t>(c.KvDim());
  const size_t L = static_cast<size_t>(c.num_hidden_layers), half = static_cast<size_t>(c.HeadDim()) / 2;
  // Per layer: a1, q, k, v, att, mid, a2, gate, up, act (the inner activations) and its
  // output (the next layer's x); checkpointing keeps one layer's inner activations.
  const size_t inner = 2 * D + 2 * QD + 2 * KVD + 3 * F + D;
  const size_t layers = checkpoint ? L * D + inner : L * (inner + D);
  return N * (D /*x of layer 0*/ + layers + D /*tmp*/ + D /*final_out*/) + 2 * batch.T * half +
         static_cast<size_t>(std::max(1, threads)) * batch.T;
}

BatchActivations::BatchActivations(Allocator& acts, Allocator& logits, const LlamaConfig& c, const Batch& batch,
                                   int threads, bool checkpoint)
    : batch_(batch), capacity_(batch), checkpoint_(checkpoint) {
  const size_t N = batch.rows(), D = static_cast<size_t>(c.hidden_size), F = static_cast<size_t>(c.intermediate_size);
  const size_t QD = static_cast<size_t>(c.QDim()), KVD = static_cast<size_t>(c.KvDim());
  const size_t L = static_cast<size_t>(c.num_hidden_layers), half = static_cast<size_t>(c.HeadDim()) / 2;
  const size_t V = static_cast<size_t>(c.vocab_size);
  const size_t per_layer = 3 * D + 2 * QD + 2 * KVD + 3 * F + D;
  const size_t total = ActivationFloats(c, batch, threads, checkpoint);
  if (N == 0 || L * per_layer > (size_t{1} << 50) / N || N > (size_t{1} << 40) / std::max<size_t>(V, 1))
    throw ShapeError(fmt::format("training batch {}x{} is too large for this model", batch.B, batch.T));
  acts_ = Tensor(acts, DType::kF32, Shape{static_cast<int64_t>(total)});
  logits_t_ = Tensor(logits, DType::kF32, Shape{static_cast<int64_t>(N * V)});
  logits_ = static_cast<float*>(logits_t_.data());
  float* p = static_cast<float*>(acts_.data());
  auto take = [&](size_t n) {
    float* out = p;
    p += n;
    return out;
  };
  float* x = take(N * D);
  float* tmp = take(N * D);
  layers_.resize(L);
  auto take_inner = [&](LayerActivations& a) {
    a.a1 = take(N * D);
    a.q = take(N * QD);
    a.k = take(N * KVD);
    a.v = take(N * KVD);
    a.att = take(N * QD);
    a.mid = take(N * D);
    a.a2 = take(N * D);
    a.gate = take(N * F);
    a.up = take(N * F);
    a.act = take(N * F);
  };
  LayerActivations shared;
  if (checkpoint) take_inner(shared);
  for (LayerActivations& a : layers_) {
    if (checkpoint) {
      a = shared;
    } else {
      take_inner(a);
    }
    a.x = x;
    a.out = take(N * D);
    a.tmp = tmp;
    x = a.out;
  }
  final_out_ = take(N * D);
  cos_ = take(batch.T * half);
  sin_ = take(batch.T * half);
  scores_ = take(static_cast<size_t>(std::max(1, threads)) * batch.T);
  NB_CHECK(static_cast<size_t>(p - static_cast<float*>(acts_.data())) == total, "activation layout");
  tokens_.resize(N);
}

void BatchActivations::Reshape(const Batch& b) {
  if (b.B < 1 || b.T < 1 || b.B > capacity_.B || b.T > capacity_.T || b.start_pos != capacity_.start_pos)
    throw ShapeError(fmt::format("batch {}x{} does not fit the {}x{} activations", b.B, b.T, capacity_.B, capacity_.T));
  batch_ = b;
  tokens_.resize(b.rows());
}

void ForwardBatch(const LlamaModel& model, std::span<const int32_t> tokens, BatchActivations& acts,
                  const LinearCall& call) {
  const LlamaConfig& c = model.config();
  const LlamaWeights& w = model.weights();
  const Batch& batch = acts.batch();
  const size_t N = batch.rows(), D = static_cast<size_t>(c.hidden_size);
  if (tokens.size() != N)
    throw ShapeError(fmt::format("training forward: {} tokens given for a {}x{} batch", tokens.size(), batch.B,
                                 batch.T));
  if (w.classifier_q != nullptr)
    throw ShapeError("training forward: the classifier was quantized at load (int8 classifier), which has no backward");
  for (size_t r = 0; r < N; ++r) {
    if (tokens[r] < 0 || tokens[r] >= c.vocab_size)
      throw ShapeError(fmt::format("training forward: token {} (sequence {}, position {}) is outside the vocabulary "
                                   "[0, {})",
                                   tokens[r], r / batch.T, r % batch.T, c.vocab_size));
  }
  std::copy(tokens.begin(), tokens.end(), acts.tokens().begin());
  const std::span<const LayerActivations> layers = acts.layers();
  EmbedRows(w.embed, tokens.data(), N, D, layers[0].x);
  RopeTables(model.inv_freq().data(), model.inv_freq().size(), 0, batch.T, acts.cos(), acts.sin());
  const LayerEnv env{&c, call, batch, acts.cos(), acts.sin(), acts.scores()};
  for (size_t l = 0; l < layers.size(); ++l) LayerForward(env, w.layers[l], layers[l]);
  kernels::RmsNorm(acts.final_in(), w.final_norm.f32(), acts.final_out(), N, D, c.rms_norm_eps);
  LinearForward(call, w.Classifier(c), acts.final_out(), acts.logits(), N);
}

void BackwardBatch(const LlamaModel& model, const BatchActivations& acts, const float* dlogits,
                   const ModelGrads& g, const LinearCall& call) {
  const LlamaConfig& c = model.config();
  const LlamaWeights& w = model.weights();
  const Batch& batch = acts.batch();
  const size_t N = batch.rows(), D = static_cast<size_t>(c.hidden_size);
  const size_t layer_scratch = LayerBackwardScratch(c, batch, call.threads);
  Tensor scratch(*call.alloc, DType::kF32, Shape{static_cast<int64_t>(2 * N * D + D + layer_scratch)});
  float* dh = static_cast<float*>(scratch.data());  // [N, D] d(residual stream)
  float* da = dh + N * D;                           // [N, D] d(final_out)
  float* dg_unused = da + N * D;                    // [D] a frozen final norm's gradient
  float* layer = dg_unused + D;
  // Classifier (tied: its weight gradient is the embedding's), then the final norm.
  LinearBackward(call, w.Classifier(c), acts.final_out(), dlogits, da, false,
                 c.tie_word_embeddings ? g.embed : g.lm_head, N);
  std::fill_n(dg_unused, D, 0.0f);
  kernels::RmsNormBackward(acts.final_in(), w.final_norm.f32(), da, dh, g.final_norm ? g.final_norm : dg_unused, N, D,
                           c.rms_norm_eps);
  const LayerEnv env{&c, call, batch, acts.cos(), acts.sin(), acts.scores()};
  const LayerGrads frozen;
  for (size_t l = acts.layers().size(); l-- > 0;) {
    // Gradient checkpointing: the layer's inner activations again, from its kept input
    // (its output, the next layer's kept input, is rewritten with the same bits).
    if (acts.checkpointed()) LayerForward(env, w.layers[l], acts.layers()[l]);
    LayerBackward(env, w.layers[l], acts.layers()[l], g.layers.empty() ? frozen : g.layers[l], dh, layer);
  }
  if (g.embed != nullptr) EmbedRowsBackward(acts.tokens().data(), dh, N, D, g.embed);
}

}  // namespace nibble::model
