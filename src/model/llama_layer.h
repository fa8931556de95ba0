// One Llama decoder layer (spec §4.2) over a batch of B sequences × T tokens, forward and
// backward, on named activations. Inference (one sequence over a KV cache), training (B
// sequences, each attending to its own rows) and GPTQ's layer-by-layer driver all call
// LayerForward, so there is one copy of the layer math:
//   x ─ RMSNorm ─ a1 ─ q,k,v (+bias) ─ RoPE ─ causal GQA attention ─ att ─ o_proj ─(+x)─ mid
//   mid ─ RMSNorm ─ a2 ─ gate, up ─ SwiGLU ─ act ─ down_proj ─(+mid)─ out
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/linear.h"
#include "model/llama_config.h"
#include "model/llama_weights.h"

namespace nibble::model {

// Which tokens a call covers: B sequences of T tokens at positions start_pos ..
// start_pos + T − 1 (the same positions in every sequence). Rows are sequence-major:
// row b·T + t is token t of sequence b; N = B·T.
struct Batch {
  size_t B = 1, T = 0;
  size_t start_pos = 0;
  size_t rows() const { return B * T; }
};

// Activations of one layer, [N, ·] f32 each. When the layer's activations are kept for
// backward every pointer is its own buffer; inference points several at the same memory
// (x = mid = out, act = gate, o = down = tmp) and they are then overwritten in turn.
struct LayerActivations {
  float* x = nullptr;     // [N, D] the layer's input (residual stream)
  float* a1 = nullptr;    // [N, D] input_layernorm(x)
  float* q = nullptr;     // [N, H·Dh] queries, RoPE applied
  // Keys (RoPE applied) and values of the batch's own rows, [N, KV·Dh], written by the
  // forward. Attention for sequence b reads positions 0 .. start_pos + T − 1 from
  // k + (b·T − start_pos)·KV·Dh: the rows before the batch are a KV cache's (B == 1) and
  // with start_pos == 0 each sequence attends to its own rows only.
  float* k = nullptr;
  float* v = nullptr;
  float* att = nullptr;   // [N, H·Dh] attention output, heads concatenated
  float* mid = nullptr;   // [N, D] x + o_proj(att)
  float* a2 = nullptr;    // [N, D] post_attention_layernorm(mid)
  float* gate = nullptr;  // [N, F] gate_proj(a2)
  float* up = nullptr;    // [N, F] up_proj(a2)
  float* act = nullptr;   // [N, F] silu(gate)·up
  float* out = nullptr;   // [N, D] mid + down_proj(act)
  float* tmp = nullptr;   // [N, D] a sublayer's output before its residual add (not kept)
};

// The call-wide inputs of a layer: shapes, RoPE tables and attention scratch.
struct LayerEnv {
  const LlamaConfig* config = nullptr;
  LinearCall call;
  Batch batch;
  const float* cos = nullptr;  // [T, Dh/2] RoPE cos of each position of the batch
  const float* sin = nullptr;  // [T, Dh/2]
  float* scores = nullptr;     // [threads, start_pos + T] attention score rows
};

// The embedding rows of tokens[0..n) (f32 or bf16 table, widened exactly) into out: [n, D].
void EmbedRows(const ConstTensorView& embed, const int32_t* tokens, size_t n, size_t D, float* out);
// d(embed) rows += dh rows of tokens[0..n): dembed [V, D] f32, dh [n, D] (in token order, so
// a repeated token sums its rows as torch's embedding backward does).
void EmbedRowsBackward(const int32_t* tokens, const float* dh, size_t n, size_t D, float* dembed);
// RoPE cos/sin [T, Dh/2] of positions start_pos .. start_pos + T − 1.
void RopeTables(const float* inv_freq, size_t half, size_t start_pos, size_t T, float* cos, float* sin);

// Runs layer `w` on a.x, writing every other activation. No checks: the model validated
// shapes and tokens at its boundary.
void LayerForward(const LayerEnv& env, const LlamaLayerWeights& w, const LayerActivations& a);

// Gradients of one layer's parameters, f32, accumulated (+=); null for a frozen role.
struct LayerGrads {
  float* attn_norm = nullptr;
  float* wq = nullptr;
  float* wk = nullptr;
  float* wv = nullptr;
  float* wo = nullptr;
  float* bq = nullptr;
  float* bk = nullptr;
  float* bv = nullptr;
  float* ffn_norm = nullptr;
  float* w_gate = nullptr;
  float* w_up = nullptr;
  float* w_down = nullptr;
};

// Floats of scratch LayerBackward needs for a batch (start_pos must be 0).
size_t LayerBackwardScratch(const LlamaConfig& c, const Batch& batch, int threads);

// Backward of LayerForward over the kept activations `a` (start_pos == 0). dh: [N, D]
// holds d(loss)/d(out) on entry and d(loss)/d(x) on return. Parameter gradients
// accumulate into `g`, adapter gradients through the adapters' Backward.
// scratch: LayerBackwardScratch(...) floats.
void LayerBackward(const LayerEnv& env, const LlamaLayerWeights& w, const LayerActivations& a, const LayerGrads& g,
                   float* dh, float* scratch);

}  // namespace nibble::model
