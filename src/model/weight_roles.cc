// The weight-role table and its walks: HF and GGUF names, shapes, presence, slots.
#include <fmt/format.h>

#include <charconv>

#include "model/llama_batch.h"
#include "model/llama_layer.h"
#include "model/llama_weights.h"

namespace nibble::model {
namespace {

using L = LlamaLayerWeights;
using W = LlamaWeights;
using LG = LayerGrads;
using MG = ModelGrads;
constexpr RoleKind kEmb = RoleKind::kEmbedding, kLin = RoleKind::kLinear, kNorm = RoleKind::kNorm,
                   kBias = RoleKind::kBias;
constexpr RoleDim kNone = RoleDim::kNone, kD = RoleDim::kD, kF = RoleDim::kF, kV = RoleDim::kV, kQD = RoleDim::kQD,
                  kKVD = RoleDim::kKVD;

// Designated initializers: each role names where its weight and its gradient live.
const WeightRole kRoles[] = {
    {.name = "embed", .hf = "model.embed_tokens.weight", .gguf = "token_embd.weight",
     .kind = kEmb, .rows = kV, .cols = kD, .per_layer = false, .top_view = &W::embed, .top_grad = &MG::embed},
    {.name = "attn_norm", .hf = "input_layernorm.weight", .gguf = "attn_norm.weight",
     .kind = kNorm, .rows = kD, .cols = kNone, .per_layer = true, .layer_view = &L::attn_norm, .layer_grad = &LG::attn_norm},
    {.name = "wq", .hf = "self_attn.q_proj.weight", .gguf = "attn_q.weight",
     .kind = kLin, .rows = kQD, .cols = kD, .per_layer = true, .layer_linear = &L::wq, .layer_grad = &LG::wq},
    {.name = "wk", .hf = "self_attn.k_proj.weight", .gguf = "attn_k.weight",
     .kind = kLin, .rows = kKVD, .cols = kD, .per_layer = true, .layer_linear = &L::wk, .layer_grad = &LG::wk},
    {.name = "wv", .hf = "self_attn.v_proj.weight", .gguf = "attn_v.weight",
     .kind = kLin, .rows = kKVD, .cols = kD, .per_layer = true, .layer_linear = &L::wv, .layer_grad = &LG::wv},
    {.name = "wo", .hf = "self_attn.o_proj.weight", .gguf = "attn_output.weight",
     .kind = kLin, .rows = kD, .cols = kQD, .per_layer = true, .layer_linear = &L::wo, .layer_grad = &LG::wo},
    {.name = "bq", .hf = "self_attn.q_proj.bias", .gguf = "attn_q.bias",
     .kind = kBias, .rows = kQD, .cols = kNone, .per_layer = true, .layer_view = &L::bq, .layer_grad = &LG::bq},
    {.name = "bk", .hf = "self_attn.k_proj.bias", .gguf = "attn_k.bias",
     .kind = kBias, .rows = kKVD, .cols = kNone, .per_layer = true, .layer_view = &L::bk, .layer_grad = &LG::bk},
    {.name = "bv", .hf = "self_attn.v_proj.bias", .gguf = "attn_v.bias",
     .kind = kBias, .rows = kKVD, .cols = kNone, .per_layer = true, .layer_view = &L::bv, .layer_grad = &LG::bv},
    {.name = "ffn_norm", .hf = "post_attention_layernorm.weight", .gguf = "ffn_norm.weight",
     .kind = kNorm, .rows = kD, .cols = kNone, .per_layer = true, .layer_view = &L::ffn_norm, .layer_grad = &LG::ffn_norm},
    {.name = "w_gate", .hf = "mlp.gate_proj.weight", .gguf = "ffn_gate.weight",
     .kind = kLin, .rows = kF, .cols = kD, .per_layer = true, .layer_linear = &L::w_gate, .layer_grad = &LG::w_gate},
    {.name = "w_up", .hf = "mlp.up_proj.weight", .gguf = "ffn_up.weight",
     .kind = kLin, .rows = kF, .cols = kD, .per_layer = true, .layer_linear = &L::w_up, .layer_grad = &LG::w_up},
    {.name = "w_down", .hf = "mlp.down_proj.weight", .gguf = "ffn_down.weight",
     .kind = kLin, .rows = kD, .cols = kF, .per_layer = true, .layer_linear = &L::w_down, .layer_grad = &LG::w_down},
    {.name = "final_norm", .hf = "model.norm.weight", .gguf = "output_norm.weight",
     .kind = kNorm, .rows = kD, .cols = kNone, .per_layer = false, .top_view = &W::final_norm, .top_grad = &MG::final_norm},
    {.name = "lm_head", .hf = "lm_head.weight", .gguf = "output.weight",
     .kind = kLin, .rows = kV, .cols = kD, .per_layer = false, .top_linear = &W::lm_head, .top_grad = &MG::lm_head},
};

int64_t Extent(const LlamaConfig& c, RoleDim d) {
  switch (d) {
    case RoleDim::kD: return c.hidden_size;
    case RoleDim::kF: return c.intermediate_size;
    case RoleDim::kV: return c.vocab_size;
    case RoleDim::kQD: return c.QDim();
    case RoleDim::kKVD: return c.KvDim();
    case RoleDim::kNone: break;
  }
  return 0;
}

// "12.rest" -> 12 and "rest"; nullopt unless digits then a dot.
std::optional<std::pair<int64_t, std::string_view>> LayerPrefix(std::string_view s) {
  int64_t layer = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), layer);
  if (ec != std::errc() || end == s.data() || end == s.data() + s.size() || *end != '.' || layer < 0)
    return std::nullopt;
  return std::pair{layer, s.substr(static_cast<size_t>(end - s.data()) + 1)};
}

}  // namespace

bool WeightRole::PresentIn(const LlamaConfig& c) const {
  if (kind == RoleKind::kBias) return c.attention_bias;
  if (top_linear == &W::lm_head) return !c.tie_word_embeddings;
  return true;
}

Shape WeightRole::ShapeIn(const LlamaConfig& c) const {
  if (cols == RoleDim::kNone) return Shape{Extent(c, rows)};
  return Shape{Extent(c, rows), Extent(c, cols)};
}

std::span<const WeightRole> WeightRoles() { return kRoles; }

std::string RoleAt::HfName() const {
  return role->per_layer ? fmt::format("model.layers.{}.{}", layer, role->hf) : std::string(role->hf);
}

std::string RoleAt::GgufName() const {
  return role->per_layer ? fmt::format("blk.{}.{}", layer, role->gguf) : std::string(role->gguf);
}

std::string RoleAt::Label() const {
  return role->per_layer ? fmt::format("layer {} {}", layer, role->name) : std::string(role->name);
}

ConstTensorView* RoleAt::View(LlamaWeights& w) const {
  if (role->layer_view != nullptr) return &(w.layers[static_cast<size_t>(layer)].*(role->layer_view));
  if (role->top_view != nullptr) return &(w.*(role->top_view));
  return nullptr;
}
const ConstTensorView* RoleAt::View(const LlamaWeights& w) const { return View(const_cast<LlamaWeights&>(w)); }

LinearWeight* RoleAt::Linear(LlamaWeights& w) const {
  if (role->layer_linear != nullptr) return &(w.layers[static_cast<size_t>(layer)].*(role->layer_linear));
  if (role->top_linear != nullptr) return &(w.*(role->top_linear));
  return nullptr;
}
const LinearWeight* RoleAt::Linear(const LlamaWeights& w) const { return Linear(const_cast<LlamaWeights&>(w)); }

namespace {

void Walk(int64_t num_layers, const std::function<bool(const WeightRole&)>& keep,
          const std::function<void(const RoleAt&)>& fn) {
  const std::span<const WeightRole> roles = WeightRoles();
  auto top = [&](bool after_layers) {
    for (const WeightRole& r : roles)
      if (!r.per_layer && (r.kind != RoleKind::kEmbedding) == after_layers && keep(r)) fn(RoleAt{&r, -1});
  };
  top(false);
  for (int64_t l = 0; l < num_layers; ++l)
    for (const WeightRole& r : roles)
      if (r.per_layer && keep(r)) fn(RoleAt{&r, l});
  top(true);
}

}  // namespace

void ForEachRole(const LlamaConfig& config, const std::function<void(const RoleAt&)>& fn) {
  Walk(config.num_hidden_layers, [&](const WeightRole& r) { return r.PresentIn(config); }, fn);
}

void ForEachRoleSlot(const LlamaWeights& w, const std::function<void(const RoleAt&)>& fn) {
  Walk(static_cast<int64_t>(w.layers.size()), [](const WeightRole&) { return true; }, fn);
}

std::optional<RoleAt> RoleFromHfName(std::string_view name) {
  std::optional<std::pair<int64_t, std::string_view>> layered;
  if (name.starts_with("model.layers.")) layered = LayerPrefix(name.substr(13));
  for (const WeightRole& r : WeightRoles()) {
    if (r.per_layer && layered && layered->second == r.hf) return RoleAt{&r, layered->first};
    if (!r.per_layer && name == r.hf) return RoleAt{&r, -1};
  }
  return std::nullopt;
}

std::string HfNameFromGguf(std::string_view name) {
  std::optional<std::pair<int64_t, std::string_view>> layered;
  if (name.starts_with("blk.")) layered = LayerPrefix(name.substr(4));
  for (const WeightRole& r : WeightRoles()) {
    if (r.per_layer && layered && layered->second == r.gguf) return RoleAt{&r, layered->first}.HfName();
    if (!r.per_layer && name == r.gguf) return std::string(r.hf);
  }
  return std::string(name);
}

}  // namespace nibble::model
