// The weight-role table and its walks: HF and GGUF names, shapes, presence, slots.
#include <fmt/format.h>

#include <charconv>

#include "model/llama_weights.h"

namespace nibble::model {
namespace {

using L = LlamaLayerWeights;
using W = LlamaWeights;
constexpr RoleKind kEmb = RoleKind::kEmbedding, kLin = RoleKind::kLinear, kNorm = RoleKind::kNorm,
                   kBias = RoleKind::kBias;
constexpr RoleDim kNone = RoleDim::kNone, kD = RoleDim::kD, kF = RoleDim::kF, kV = RoleDim::kV, kQD = RoleDim::kQD,
                  kKVD = RoleDim::kKVD;

const WeightRole kRoles[] = {
    {"embed", "model.embed_tokens.weight", "token_embd.weight", kEmb, kV, kD, false, nullptr, nullptr, &W::embed},
    {"attn_norm", "input_layernorm.weight", "attn_norm.weight", kNorm, kD, kNone, true, &L::attn_norm},
    {"wq", "self_attn.q_proj.weight", "attn_q.weight", kLin, kQD, kD, true, nullptr, &L::wq},
    {"wk", "self_attn.k_proj.weight", "attn_k.weight", kLin, kKVD, kD, true, nullptr, &L::wk},
    {"wv", "self_attn.v_proj.weight", "attn_v.weight", kLin, kKVD, kD, true, nullptr, &L::wv},
    {"wo", "self_attn.o_proj.weight", "attn_output.weight", kLin, kD, kQD, true, nullptr, &L::wo},
    {"bq", "self_attn.q_proj.bias", "attn_q.bias", kBias, kQD, kNone, true, &L::bq},
    {"bk", "self_attn.k_proj.bias", "attn_k.bias", kBias, kKVD, kNone, true, &L::bk},
    {"bv", "self_attn.v_proj.bias", "attn_v.bias", kBias, kKVD, kNone, true, &L::bv},
    {"ffn_norm", "post_attention_layernorm.weight", "ffn_norm.weight", kNorm, kD, kNone, true, &L::ffn_norm},
    {"w_gate", "mlp.gate_proj.weight", "ffn_gate.weight", kLin, kF, kD, true, nullptr, &L::w_gate},
    {"w_up", "mlp.up_proj.weight", "ffn_up.weight", kLin, kF, kD, true, nullptr, &L::w_up},
    {"w_down", "mlp.down_proj.weight", "ffn_down.weight", kLin, kD, kF, true, nullptr, &L::w_down},
    {"final_norm", "model.norm.weight", "output_norm.weight", kNorm, kD, kNone, false, nullptr, nullptr,
     &W::final_norm},
    {"lm_head", "lm_head.weight", "output.weight", kLin, kV, kD, false, nullptr, nullptr, nullptr, &W::lm_head},
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
