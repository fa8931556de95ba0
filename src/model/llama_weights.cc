// LlamaWeights validation and the HF-name binder.
#include "model/llama_weights.h"

#include <fmt/format.h>

#include <string>

#include "nibble/error.h"

namespace nibble::model {
namespace {

void CheckRole(const ConstTensorView& t, const std::string& role, const Shape& want) {
  if (t.data == nullptr) throw ShapeError(fmt::format("Llama weights: tensor '{}' is missing", role));
  if (t.dtype != DType::kF32)
    throw ShapeError(fmt::format("Llama weights: tensor '{}': expected dtype F32, got {}", role, DTypeName(t.dtype)));
  if (!(t.shape == want))
    throw ShapeError(fmt::format("Llama weights: tensor '{}': expected shape {}, got {}", role, want.ToString(),
                                 t.shape.ToString()));
}

}  // namespace

void LlamaWeights::Validate(const LlamaConfig& c) const {
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t QD = c.QDim(), KVD = c.KvDim();
  CheckRole(embed, "embed", {V, D});
  if (static_cast<int64_t>(layers.size()) != c.num_hidden_layers)
    throw ShapeError(fmt::format("Llama weights: expected {} layers (num_hidden_layers), got {}",
                                 c.num_hidden_layers, layers.size()));
  for (size_t l = 0; l < layers.size(); ++l) {
    const LlamaLayerWeights& w = layers[l];
    const std::string p = fmt::format("layer {} ", l);
    CheckRole(w.attn_norm, p + "attn_norm", {D});
    CheckRole(w.wq, p + "wq", {QD, D});
    CheckRole(w.wk, p + "wk", {KVD, D});
    CheckRole(w.wv, p + "wv", {KVD, D});
    CheckRole(w.wo, p + "wo", {D, QD});
    if (c.attention_bias) {
      CheckRole(w.bq, p + "bq", {QD});
      CheckRole(w.bk, p + "bk", {KVD});
      CheckRole(w.bv, p + "bv", {KVD});
    }
    CheckRole(w.ffn_norm, p + "ffn_norm", {D});
    CheckRole(w.w_gate, p + "w_gate", {F, D});
    CheckRole(w.w_up, p + "w_up", {F, D});
    CheckRole(w.w_down, p + "w_down", {D, F});
  }
  CheckRole(final_norm, "final_norm", {D});
  if (!c.tie_word_embeddings) CheckRole(lm_head, "lm_head", {V, D});
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

}  // namespace nibble::model
