// LlamaWeights validation, the HF-name binder and the bf16 conversion of the matrices.
#include "model/llama_weights.h"

#include <fmt/format.h>

#include <cstring>
#include <string>

#include "kernels/convert.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {

// Which dtypes a role accepts: matrices f32 or bf16, norms and biases f32 only.
enum class RoleKind { kVector, kMatrix };

void CheckDType(const ConstTensorView& t, const std::string& role, RoleKind kind) {
  const bool ok = t.dtype == DType::kF32 || (kind == RoleKind::kMatrix && t.dtype == DType::kBF16);
  if (!ok)
    throw ShapeError(fmt::format("Llama weights: tensor '{}': expected dtype {}, got {}", role,
                                 kind == RoleKind::kMatrix ? "F32 or BF16" : "F32", DTypeName(t.dtype)));
}

void CheckRole(const ConstTensorView& t, const std::string& role, const Shape& want,
               RoleKind kind = RoleKind::kVector) {
  if (t.data == nullptr) throw ShapeError(fmt::format("Llama weights: tensor '{}' is missing", role));
  CheckDType(t, role, kind);
  if (!(t.shape == want))
    throw ShapeError(fmt::format("Llama weights: tensor '{}': expected shape {}, got {}", role, want.ToString(),
                                 t.shape.ToString()));
}

// A matrix role: its dense view, or a quantized one of the same [out, in] shape.
void CheckMatrix(const ConstTensorView& t, const quant::QTensor* q, const std::string& role, const Shape& want) {
  if (q == nullptr) return CheckRole(t, role, want, RoleKind::kMatrix);
  if (!(q->shape == want))
    throw ShapeError(fmt::format("Llama weights: quantized tensor '{}': expected shape {}, got {}", role,
                                 want.ToString(), q->shape.ToString()));
}

}  // namespace

void LlamaWeights::Validate(const LlamaConfig& c) const {
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t QD = c.QDim(), KVD = c.KvDim();
  CheckRole(embed, "embed", {V, D}, RoleKind::kMatrix);
  if (static_cast<int64_t>(layers.size()) != c.num_hidden_layers)
    throw ShapeError(fmt::format("Llama weights: expected {} layers (num_hidden_layers), got {}",
                                 c.num_hidden_layers, layers.size()));
  for (size_t l = 0; l < layers.size(); ++l) {
    const LlamaLayerWeights& w = layers[l];
    const std::string p = fmt::format("layer {} ", l);
    CheckRole(w.attn_norm, p + "attn_norm", {D});
    CheckMatrix(w.wq, w.q.wq, p + "wq", {QD, D});
    CheckMatrix(w.wk, w.q.wk, p + "wk", {KVD, D});
    CheckMatrix(w.wv, w.q.wv, p + "wv", {KVD, D});
    CheckMatrix(w.wo, w.q.wo, p + "wo", {D, QD});
    if (c.attention_bias) {
      CheckRole(w.bq, p + "bq", {QD});
      CheckRole(w.bk, p + "bk", {KVD});
      CheckRole(w.bv, p + "bv", {KVD});
    }
    CheckRole(w.ffn_norm, p + "ffn_norm", {D});
    CheckMatrix(w.w_gate, w.q.w_gate, p + "w_gate", {F, D});
    CheckMatrix(w.w_up, w.q.w_up, p + "w_up", {F, D});
    CheckMatrix(w.w_down, w.q.w_down, p + "w_down", {D, F});
  }
  CheckRole(final_norm, "final_norm", {D});
  if (!c.tie_word_embeddings) CheckMatrix(lm_head, lm_head_q, "lm_head", {V, D});
}

LlamaWeights BindHfTensors(const LlamaConfig& config, const TensorLookup& lookup, const QuantizedLookup& quantized) {
  auto get_q = [&](const std::string& name) -> const quant::QTensor* { return quantized ? quantized(name) : nullptr; };
  auto get = [&](const std::string& name) {
    std::optional<ConstTensorView> t = lookup(name);
    if (!t || t->data == nullptr) throw ShapeError(fmt::format("Llama weights: tensor '{}' is missing", name));
    return *t;
  };
  LlamaWeights w;
  w.embed = get("model.embed_tokens.weight");
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    LlamaLayerWeights lw;
    lw.attn_norm = get(p + "input_layernorm.weight");
    lw.q.wq = get_q(p + "self_attn.q_proj.weight");
    if (lw.q.wq == nullptr) lw.wq = get(p + "self_attn.q_proj.weight");
    lw.q.wk = get_q(p + "self_attn.k_proj.weight");
    if (lw.q.wk == nullptr) lw.wk = get(p + "self_attn.k_proj.weight");
    lw.q.wv = get_q(p + "self_attn.v_proj.weight");
    if (lw.q.wv == nullptr) lw.wv = get(p + "self_attn.v_proj.weight");
    lw.q.wo = get_q(p + "self_attn.o_proj.weight");
    if (lw.q.wo == nullptr) lw.wo = get(p + "self_attn.o_proj.weight");
    if (config.attention_bias) {
      lw.bq = get(p + "self_attn.q_proj.bias");
      lw.bk = get(p + "self_attn.k_proj.bias");
      lw.bv = get(p + "self_attn.v_proj.bias");
    }
    lw.ffn_norm = get(p + "post_attention_layernorm.weight");
    lw.q.w_gate = get_q(p + "mlp.gate_proj.weight");
    if (lw.q.w_gate == nullptr) lw.w_gate = get(p + "mlp.gate_proj.weight");
    lw.q.w_up = get_q(p + "mlp.up_proj.weight");
    if (lw.q.w_up == nullptr) lw.w_up = get(p + "mlp.up_proj.weight");
    lw.q.w_down = get_q(p + "mlp.down_proj.weight");
    if (lw.q.w_down == nullptr) lw.w_down = get(p + "mlp.down_proj.weight");
    w.layers.push_back(lw);
  }
  w.final_norm = get("model.norm.weight");
  if (!config.tie_word_embeddings) {
    w.lm_head_q = get_q("lm_head.weight");
    if (w.lm_head_q == nullptr) w.lm_head = get("lm_head.weight");
  }
  w.Validate(config);
  return w;
}

namespace {

// Copies one role into `out.storage`: matrices as bf16 (rounded from f32 with RNE, or
// copied if already bf16), vectors as f32. Absent stays absent.
ConstTensorView CopyRole(Allocator& alloc, OwnedLlamaWeights& out, const ConstTensorView& t,
                         const std::string& role, RoleKind kind, int num_threads) {
  if (t.data == nullptr) return {};
  CheckDType(t, role, kind);
  const DType to = kind == RoleKind::kMatrix ? DType::kBF16 : DType::kF32;
  Tensor& dst = out.storage.emplace_back(alloc, to, t.shape);
  const size_t n = static_cast<size_t>(t.NumElems());
  if (t.dtype == to) {
    std::memcpy(dst.data(), t.data, t.NumBytes());
  } else {
    kernels::ConvertFromF32Parallel(num_threads, to, static_cast<const float*>(t.data), dst.data(), n);
  }
  return {dst.data(), to, t.shape};
}

}  // namespace

OwnedLlamaWeights ConvertWeightsToBf16(Allocator& alloc, const LlamaWeights& src, int num_threads) {
  OwnedLlamaWeights out;
  // Every role is one Tensor; reserving keeps the vector from reallocating (Tensors move
  // without moving their data anyway, so the views would stay valid either way).
  out.storage.reserve(3 + 12 * src.layers.size());
  LlamaWeights& w = out.weights;
  constexpr RoleKind kM = RoleKind::kMatrix, kV = RoleKind::kVector;
  w.embed = CopyRole(alloc, out, src.embed, "embed", kM, num_threads);
  for (size_t l = 0; l < src.layers.size(); ++l) {
    const LlamaLayerWeights& s = src.layers[l];
    const std::string p = fmt::format("layer {} ", l);
    LlamaLayerWeights d;
    d.attn_norm = CopyRole(alloc, out, s.attn_norm, p + "attn_norm", kV, num_threads);
    d.wq = CopyRole(alloc, out, s.wq, p + "wq", kM, num_threads);
    d.wk = CopyRole(alloc, out, s.wk, p + "wk", kM, num_threads);
    d.wv = CopyRole(alloc, out, s.wv, p + "wv", kM, num_threads);
    d.wo = CopyRole(alloc, out, s.wo, p + "wo", kM, num_threads);
    d.bq = CopyRole(alloc, out, s.bq, p + "bq", kV, num_threads);
    d.bk = CopyRole(alloc, out, s.bk, p + "bk", kV, num_threads);
    d.bv = CopyRole(alloc, out, s.bv, p + "bv", kV, num_threads);
    d.ffn_norm = CopyRole(alloc, out, s.ffn_norm, p + "ffn_norm", kV, num_threads);
    d.w_gate = CopyRole(alloc, out, s.w_gate, p + "w_gate", kM, num_threads);
    d.w_up = CopyRole(alloc, out, s.w_up, p + "w_up", kM, num_threads);
    d.w_down = CopyRole(alloc, out, s.w_down, p + "w_down", kM, num_threads);
    d.q = s.q;  // quantized roles stay as they are (their compute dtype decides)
    w.layers.push_back(d);
  }
  w.final_norm = CopyRole(alloc, out, src.final_norm, "final_norm", kV, num_threads);
  w.lm_head = CopyRole(alloc, out, src.lm_head, "lm_head", kM, num_threads);
  w.lm_head_q = src.lm_head_q;
  w.classifier_q = src.classifier_q;
  return out;
}

}  // namespace nibble::model
