// Llama-family model configuration with Hugging Face field names (config.json of
// LlamaForCausalLM; Qwen2's q/k/v bias as attention_bias) and its validation.
// Layer rule: model depends on core, kernels and quant only (never io).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/rope.h"

namespace nibble::model {

// config.json `rope_scaling` (transformers' rope_type names) or its GGUF equivalent.
enum class RopeScalingType {
  kNone,
  kLinear,  // inv_freq / factor (position interpolation)
  kLlama3,  // Llama 3.1: low frequencies / factor, high kept, a smooth ramp between
  kFreqFactors,  // GGUF `rope_freqs.weight`: inv_freq_j / freq_factors[j] (llama.cpp's form of llama3)
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;                    // kLlama3
  float high_freq_factor = 4.0f;                   // kLlama3
  int64_t original_max_position_embeddings = 0;    // kLlama3
  std::vector<float> freq_factors;                 // kFreqFactors: [head_dim/2]
};

struct LlamaConfig {
  int64_t hidden_size = 0;              // D
  int64_t intermediate_size = 0;        // F (MLP width)
  int64_t num_hidden_layers = 0;        // L
  int64_t num_attention_heads = 0;      // H
  int64_t num_key_value_heads = 0;      // KV (H % KV == 0; KV == H without GQA)
  int64_t head_dim = 0;                 // Dh; 0 means hidden_size / num_attention_heads
  int64_t vocab_size = 0;               // V
  int64_t max_position_embeddings = 0;  // longest context the KV cache may hold by default
  float rms_norm_eps = 1e-6f;           // HF LlamaConfig default
  float rope_theta = 10000.0f;          // HF LlamaConfig default
  bool tie_word_embeddings = false;     // lm_head = embed_tokens
  bool attention_bias = false;          // q/k/v projections carry biases (Qwen2)
  // Row order of q_proj/k_proj within a head, which decides the RoPE pairing:
  // kAdjacentPairs for llama2.c/GGUF/Meta weights, kRotateHalf for HF weights.
  kernels::RopeLayout rope_layout = kernels::RopeLayout::kRotateHalf;
  RopeScaling rope_scaling;

  // inv_freq [HeadDim()/2] f32 with rope_scaling applied, computed in f32 in the order
  // transformers' _compute_default/linear/llama3_parameters use.
  std::vector<float> RopeInvFreq() const;

  // Throws ConfigError naming the first field that is missing or out of range:
  // positive extents (each at most 2^24, so products fit easily), H % KV == 0,
  // head_dim even, rms_norm_eps > 0 and rope_theta > 1, both finite, rope_scaling's
  // factors finite and >= 1 (low < high, original positions >= 1; freq_factors of
  // head_dim/2 positive finite values).
  void Validate() const;

  int64_t HeadDim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  int64_t QDim() const { return num_attention_heads * HeadDim(); }     // H·Dh
  int64_t KvDim() const { return num_key_value_heads * HeadDim(); }    // KV·Dh
};

// Rows of a q_proj / k_proj weight, bias or LoRA B [heads·Dh, cols] stored in Meta's
// adjacent-pair RoPE order (llama2.c, GGUF: RopeLayout::kAdjacentPairs) reordered to Hugging
// Face's rotate-half order, in place: for each head of Dh rows, HF row j·Dh/2 + i is Meta
// row 2i + j. `to_hf` false reorders back.
void PermuteRopeRows(float* data, int64_t heads, int64_t head_dim, int64_t cols, bool to_hf = true);

// The head count to permute a tensor by when a model in Meta's order exchanges it with HF
// files: num_attention_heads for a name holding "self_attn.q_proj.", num_key_value_heads
// for "self_attn.k_proj."; 0 for any other name or a model already in HF's order.
int64_t RopeRowHeads(const LlamaConfig& c, std::string_view hf_name);

}  // namespace nibble::model
