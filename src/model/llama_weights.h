// Llama weights by role: borrowed views (the caller owns the memory: a mapped file or
// converted copies, and keeps it alive as long as the model), checked against a
// LlamaConfig once, a binder from the Hugging Face tensor names of spec §4.3, and the
// conversion of the matrices to bf16.
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "model/llama_config.h"
#include "quant/qtensor.h"

namespace nibble::model {

// An absent optional tensor is a view with data == nullptr. Matrices (embed, wq, wk, wv,
// wo, w_gate, w_up, w_down, lm_head) are f32 or bf16, each on its own (the dtype picks
// the matmul kernel per matrix); norms and biases are always f32.
// Quantized projection matrices (QuantizedLinear): a role set here is used instead of
// its dense view above, which then stays absent. The QTensors are owned by the loader
// and must outlive the model.
struct QuantizedRoles {
  const quant::QTensor* wq = nullptr;      // [H*Dh, D]
  const quant::QTensor* wk = nullptr;      // [KV*Dh, D]
  const quant::QTensor* wv = nullptr;      // [KV*Dh, D]
  const quant::QTensor* wo = nullptr;      // [D, H*Dh]
  const quant::QTensor* w_gate = nullptr;  // [F, D]
  const quant::QTensor* w_up = nullptr;    // [F, D]
  const quant::QTensor* w_down = nullptr;  // [D, F]
  bool any() const { return wq || wk || wv || wo || w_gate || w_up || w_down; }
};

struct LlamaLayerWeights {
  ConstTensorView attn_norm;  // [D] f32, input_layernorm
  ConstTensorView wq;         // [H*Dh, D] f32|bf16, q_proj (row order per config.rope_layout)
  ConstTensorView wk;         // [KV*Dh, D] f32|bf16, k_proj (row order per config.rope_layout)
  ConstTensorView wv;         // [KV*Dh, D] f32|bf16, v_proj
  ConstTensorView wo;         // [D, H*Dh] f32|bf16, o_proj
  ConstTensorView bq;         // [H*Dh] f32, present iff config.attention_bias
  ConstTensorView bk;         // [KV*Dh] f32, present iff config.attention_bias
  ConstTensorView bv;         // [KV*Dh] f32, present iff config.attention_bias
  ConstTensorView ffn_norm;   // [D] f32, post_attention_layernorm
  ConstTensorView w_gate;     // [F, D] f32|bf16, mlp.gate_proj
  ConstTensorView w_up;       // [F, D] f32|bf16, mlp.up_proj
  ConstTensorView w_down;     // [D, F] f32|bf16, mlp.down_proj
  QuantizedRoles q;           // quantized projections, when the checkpoint has them
};

struct LlamaWeights {
  ConstTensorView embed;                  // [V, D] f32|bf16, embed_tokens
  std::vector<LlamaLayerWeights> layers;  // L entries
  ConstTensorView final_norm;             // [D] f32, model.norm
  ConstTensorView lm_head;                // [V, D] f32|bf16; absent (ignored) when tie_word_embeddings
  const quant::QTensor* lm_head_q = nullptr;  // quantized classifier (instead of lm_head), if any
  // The classifier quantized at load (the CLI's --int8-classifier), tied or not; when set
  // it replaces Classifier() and lm_head_q.
  const quant::QTensor* classifier_q = nullptr;

  // Throws ShapeError naming the role ("layer 3 w_up") when a tensor is missing, has a
  // dtype other than the above or has the wrong shape for `config` (which must already
  // be valid).
  void Validate(const LlamaConfig& config) const;
  // The classifier matrix in use: embed when tied, else lm_head.
  const ConstTensorView& Classifier(const LlamaConfig& config) const {
    return config.tie_word_embeddings ? embed : lm_head;
  }
};

// A quantized matrix by HF weight name ("model.layers.0.mlp.up_proj.weight"); nullptr
// when that role is dense.
using QuantizedLookup = std::function<const quant::QTensor*(std::string_view name)>;

// Looks a tensor up by its HF name ("model.layers.0.self_attn.q_proj.weight");
// std::nullopt when the file has no such tensor.
using TensorLookup = std::function<std::optional<ConstTensorView>(std::string_view name)>;

// Fills every role from the HF names of spec §4.3 (biases only with attention_bias,
// lm_head only when untied), then Validate()s. A missing tensor is a ShapeError
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
