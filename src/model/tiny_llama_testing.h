// Test-only helpers: a tiny random Llama (GQA, q/k/v biases, untied head) whose
// weights live in plain vectors, shared by the model layer's tests.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "model/llama_config.h"
#include "model/llama_weights.h"

namespace nibble::model::testing {

// D 32, F 48, L 2, H 4, KV 2, V 40, context 64, adjacent-pair RoPE.
inline LlamaConfig TinyConfig() {
  LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 40;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.attention_bias = true;
  c.rope_layout = kernels::RopeLayout::kAdjacentPairs;
  return c;
}

// Owns random f32 tensors and hands out the views of a LlamaWeights.
struct RandomWeights {
  std::vector<std::vector<float>> store;
  std::mt19937 rng{1234};

  ConstTensorView Make(Shape shape, float scale, float offset = 0.0f) {
    std::normal_distribution<float> dist(offset, scale);
    std::vector<float> v(static_cast<size_t>(shape.NumElems()));
    for (float& x : v) x = dist(rng);
    store.push_back(std::move(v));
    return {store.back().data(), DType::kF32, shape};
  }
  LlamaWeights Build(const LlamaConfig& c) {
    store.reserve(64);
    const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, QD = c.QDim(), KVD = c.KvDim();
    const float s = 1.0f / std::sqrt(static_cast<float>(D));
    LlamaWeights w;
    w.embed = Make({V, D}, 1.0f);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      LlamaLayerWeights lw;
      lw.attn_norm = Make({D}, 0.1f, 1.0f);
      lw.wq.dense = Make({QD, D}, s);
      lw.wk.dense = Make({KVD, D}, s);
      lw.wv.dense = Make({KVD, D}, s);
      lw.wo.dense = Make({D, QD}, s);
      lw.bq = Make({QD}, 0.1f);
      lw.bk = Make({KVD}, 0.1f);
      lw.bv = Make({KVD}, 0.1f);
      lw.ffn_norm = Make({D}, 0.1f, 1.0f);
      lw.w_gate.dense = Make({F, D}, s);
      lw.w_up.dense = Make({F, D}, s);
      lw.w_down.dense = Make({D, F}, 1.0f / std::sqrt(static_cast<float>(F)));
      w.layers.push_back(lw);
    }
    w.final_norm = Make({D}, 0.1f, 1.0f);
    w.lm_head.dense = Make({V, D}, s);
    return w;
  }
};


}  // namespace nibble::model::testing
