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
    CheckRole(w.wq, p + "wq", {QD, D}, RoleKind::kMatrix);
    CheckRole(w.wk, p + "wk", {KVD, D}, RoleKind::kMatrix);
    CheckRole(w.wv, p + "wv", {KVD, D}, RoleKind::kMatrix);
    CheckRole(w.wo, p + "wo", {D, QD}, RoleKind::kMatrix);
    if (c.attention_bias) {
      CheckRole(w.bq, p + "bq", {QD});
      CheckRole(w.bk, p + "bk", {KVD});
      CheckRole(w.bv, p + "bv", {KVD});
    }
    CheckRole(w.ffn_norm, p + "ffn_norm", {D});
    CheckRole(w.w_gate, p + "w_gate", {F, D}, RoleKind::kMatrix);
    CheckRole(w.w_up, p + "w_up", {F, D}, RoleKind::kMatrix);
    CheckRole(w.w_down, p + "w_down", {D, F}, RoleKind::kMatrix);
  }
  CheckRole(final_norm, "final_norm", {D});
  if (!c.tie_word_embeddings) CheckRole(lm_head, "lm_head", {V, D}, RoleKind::kMatrix);
}

LlamaWeights BindHfTensors(const LlamaConfig& config, const TensorLookup& lookup) {
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
    lw.wq = get(p + "self_attn.q_proj.weight");
    lw.wk = get(p + "self_attn.k_proj.weight");
    lw.wv = get(p + "self_attn.v_proj.weight");
    lw.wo = get(p + "self_attn.o_proj.weight");
    if (config.attention_bias) {
      lw.bq = get(p + "self_attn.q_proj.bias");
      lw.bk = get(p + "self_attn.k_proj.bias");
      lw.bv = get(p + "self_attn.v_proj.bias");
    }
    lw.ffn_norm = get(p + "post_attention_layernorm.weight");
    lw.w_gate = get(p + "mlp.gate_proj.weight");
    lw.w_up = get(p + "mlp.up_proj.weight");
    lw.w_down = get(p + "mlp.down_proj.weight");
    w.layers.push_back(lw);
  }
  w.final_norm = get("model.norm.weight");
  if (!config.tie_word_embeddings) w.lm_head = get("lm_head.weight");
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
    w.layers.push_back(d);
  }
  w.final_norm = CopyRole(alloc, out, src.final_norm, "final_norm", kV, num_threads);
  w.lm_head = CopyRole(alloc, out, src.lm_head, "lm_head", kM, num_threads);
  return out;
}

}  // namespace nibble::model
