// Llama weights by role: borrowed views (the caller owns the memory: a mapped file or
// converted copies, and keeps it alive as long as the model), the one role table every
// walk over the weights uses (validation, binding by HF or GGUF name, bf16 conversion,
// the training buffers), checked against a LlamaConfig once, and the conversion of the
// matrices to bf16.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "model/linear.h"
#include "model/llama_config.h"
#include "quant/qtensor.h"

namespace nibble::model {

// An absent optional tensor is a view with data == nullptr. Matrices (embed and every
// Linear's dense view) are f32 or bf16, each on its own (the dtype picks the matmul
// kernel per matrix); norms and biases are always f32. A Linear may instead be quantized
// (LinearWeight::q, a QTensor owned by the loader that must outlive the model); its
// dense view then stays absent. The roles are listed once, in WeightRoles() below.
struct LlamaLayerWeights {
  ConstTensorView attn_norm;  // [D] f32, input_layernorm
  LinearWeight wq;            // [H*Dh, D] q_proj (row order per config.rope_layout)
  LinearWeight wk;            // [KV*Dh, D] k_proj (row order per config.rope_layout)
  LinearWeight wv;            // [KV*Dh, D] v_proj
  LinearWeight wo;            // [D, H*Dh] o_proj
  ConstTensorView bq;         // [H*Dh] f32, present iff config.attention_bias
  ConstTensorView bk;         // [KV*Dh] f32, present iff config.attention_bias
  ConstTensorView bv;         // [KV*Dh] f32, present iff config.attention_bias
  ConstTensorView ffn_norm;   // [D] f32, post_attention_layernorm
  LinearWeight w_gate;        // [F, D] mlp.gate_proj
  LinearWeight w_up;          // [F, D] mlp.up_proj
  LinearWeight w_down;        // [D, F] mlp.down_proj
};

struct LlamaWeights {
  ConstTensorView embed;                  // [V, D] f32|bf16, embed_tokens
  std::vector<LlamaLayerWeights> layers;  // L entries
  ConstTensorView final_norm;             // [D] f32, model.norm
  LinearWeight lm_head;                   // [V, D]; absent (ignored) when tie_word_embeddings
  // The classifier quantized at load (the CLI's --int8-classifier), tied or not; when set
  // it replaces the dense classifier and a quantized lm_head.
  const quant::QTensor* classifier_q = nullptr;

  // Throws ShapeError naming the role ("layer 3 w_up") when a tensor is missing, has a
  // dtype other than the above or has the wrong shape for `config` (which must already
  // be valid).
  void Validate(const LlamaConfig& config) const;
  // The classifier in use: classifier_q when set, else the embedding when tied, else
  // lm_head (with its adapter, if any).
  LinearWeight Classifier(const LlamaConfig& config) const {
    LinearWeight w = config.tie_word_embeddings ? LinearWeight{embed, nullptr, nullptr} : lm_head;
    if (classifier_q != nullptr) w.q = classifier_q;
    return w;
  }
};

// ---- The one table of weight roles (gemma.cpp's ForEachTensor, llm.c's parameter list) ----

enum class RoleKind : uint8_t {
  kEmbedding,  // [V, D] matrix read by row (and as the classifier when tied)
  kLinear,     // [out, in] LinearWeight: dense f32|bf16, or quantized
  kNorm,       // [D] f32 RMSNorm weight
  kBias,       // [out] f32, present iff config.attention_bias
};

// An extent of the config, for a role's shape.
enum class RoleDim : uint8_t { kNone, kD, kF, kV, kQD, kKVD };

struct LayerGrads;
struct ModelGrads;

struct WeightRole {
  std::string_view name;  // "wq", "attn_norm", "embed", ...: messages say "layer 3 wq"
  std::string_view hf;    // HF name; per-layer roles: the part after "model.layers.N."
  std::string_view gguf;  // GGUF name; per-layer roles: the part after "blk.N."
  RoleKind kind;
  RoleDim rows, cols;  // cols kNone for vectors
  bool per_layer;
  // Where the role lives: exactly one of these is set.
  ConstTensorView LlamaLayerWeights::*layer_view = nullptr;
  LinearWeight LlamaLayerWeights::*layer_linear = nullptr;
  ConstTensorView LlamaWeights::*top_view = nullptr;
  LinearWeight LlamaWeights::*top_linear = nullptr;
  // Its gradient slot when it trains (model/llama_layer.h, model/llama_batch.h): in
  // LayerGrads for the per-layer roles, in ModelGrads for the others.
  float* LayerGrads::*layer_grad = nullptr;
  float* ModelGrads::*top_grad = nullptr;

  bool is_matrix() const { return kind == RoleKind::kEmbedding || kind == RoleKind::kLinear; }
  // Biases only with attention_bias, lm_head only when untied.
  bool PresentIn(const LlamaConfig& c) const;
  Shape ShapeIn(const LlamaConfig& c) const;
};

// Every role, in the order of a Hugging Face checkpoint: embed, the per-layer roles
// (input_layernorm, q/k/v/o, q/k/v biases, post_attention_layernorm, gate/up/down), norm,
// lm_head. Per-layer roles are visited once per layer by ForEachRole.
std::span<const WeightRole> WeightRoles();

// One role at one layer (layer -1 for the top-level roles).
struct RoleAt {
  const WeightRole* role = nullptr;
  int64_t layer = -1;

  std::string HfName() const;    // "model.layers.3.mlp.up_proj.weight"
  std::string GgufName() const;  // "blk.3.ffn_up.weight"
  std::string Label() const;     // "layer 3 w_up", "embed"
  // The role's slot in `w`: its view (vectors, embedding) or its LinearWeight (Linears);
  // the other is null.
  ConstTensorView* View(LlamaWeights& w) const;
  const ConstTensorView* View(const LlamaWeights& w) const;
  LinearWeight* Linear(LlamaWeights& w) const;
  const LinearWeight* Linear(const LlamaWeights& w) const;
};

// Visits the roles `config` has, in checkpoint order (see WeightRoles()).
void ForEachRole(const LlamaConfig& config, const std::function<void(const RoleAt&)>& fn);
// Visits every role slot of `w` (L = w.layers.size()), present or not, in the same order.
void ForEachRoleSlot(const LlamaWeights& w, const std::function<void(const RoleAt&)>& fn);

// The role of an HF tensor name; nullopt for names outside the table.
std::optional<RoleAt> RoleFromHfName(std::string_view name);
// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight" (and the top-level
// names); names outside the table come back unchanged.
std::string HfNameFromGguf(std::string_view gguf_name);

// A quantized matrix by HF weight name ("model.layers.0.mlp.up_proj.weight"); nullptr
// when that role is dense.
using QuantizedLookup = std::function<const quant::QTensor*(std::string_view name)>;

// Looks a tensor up by its HF name ("model.layers.0.self_attn.q_proj.weight");
// std::nullopt when the file has no such tensor.
using TensorLookup = std::function<std::optional<ConstTensorView>(std::string_view name)>;

// Fills every role ForEachRole visits from its HF name (spec §4.3), then Validate()s. A missing tensor is a ShapeError
// naming it.
// Roles found by `quantized` (when given) are bound as QTensors instead.
LlamaWeights BindHfTensors(const LlamaConfig& config, const TensorLookup& lookup,
                           const QuantizedLookup& quantized = nullptr);

// Weights that own their memory: bf16 matrices, f32 norms and biases (copies), so the
// source may be released once this exists. Movable; the views stay valid across moves.
struct OwnedLlamaWeights {
  std::vector<Tensor> storage;  // one Tensor per present role
  LlamaWeights weights;         // views into `storage`
};

// Copies `src` with every matrix rounded to bf16 (RNE, core/float_convert.h F32ToBF16,
// via kernels::ConvertFromF32Parallel; bf16 matrices are copied as they are) and norms
// and biases kept f32. Absent roles stay absent. `src` need not be validated, but each
// present matrix must be f32 or bf16 and each norm and bias f32 (ShapeError otherwise).
// Memory comes from `alloc`.
OwnedLlamaWeights ConvertWeightsToBf16(Allocator& alloc, const LlamaWeights& src, int num_threads = 1);

}  // namespace nibble::model
