// LlamaConfig::Validate: one ConfigError per bad field, naming it and its value.
#include "model/llama_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "nibble/error.h"

namespace nibble::model {
namespace {

// 2^24 bounds every extent so that products of three of them fit in int64 with room.
constexpr int64_t kMaxExtent = int64_t{1} << 24;

void CheckExtent(const char* field, int64_t value) {
  if (value < 1 || value > kMaxExtent)
    throw ConfigError(fmt::format("Llama config: field '{}' must be in [1, {}], got {}", field, kMaxExtent, value));
}

}  // namespace

void LlamaConfig::Validate() const {
  CheckExtent("hidden_size", hidden_size);
  CheckExtent("intermediate_size", intermediate_size);
  CheckExtent("num_hidden_layers", num_hidden_layers);
  CheckExtent("num_attention_heads", num_attention_heads);
  CheckExtent("num_key_value_heads", num_key_value_heads);
  CheckExtent("vocab_size", vocab_size);
  CheckExtent("max_position_embeddings", max_position_embeddings);
  if (head_dim < 0 || head_dim > kMaxExtent)
    throw ConfigError(fmt::format("Llama config: field 'head_dim' must be in [0, {}], got {}", kMaxExtent, head_dim));
  if (head_dim == 0 && hidden_size % num_attention_heads != 0)
    throw ConfigError(fmt::format(
        "Llama config: field 'hidden_size' ({}) must be a multiple of 'num_attention_heads' ({}) when "
        "'head_dim' is not given",
        hidden_size, num_attention_heads));
  if (HeadDim() % 2 != 0)
    throw ConfigError(fmt::format("Llama config: field 'head_dim' must be even for RoPE, got {}", HeadDim()));
  if (num_attention_heads % num_key_value_heads != 0)
    throw ConfigError(fmt::format(
        "Llama config: field 'num_key_value_heads' ({}) must divide 'num_attention_heads' ({})",
        num_key_value_heads, num_attention_heads));
  if (!(rms_norm_eps > 0.0f) || !std::isfinite(rms_norm_eps))
    throw ConfigError(fmt::format("Llama config: field 'rms_norm_eps' must be finite and > 0, got {}", rms_norm_eps));
  if (!(rope_theta > 1.0f) || !std::isfinite(rope_theta))
    throw ConfigError(fmt::format("Llama config: field 'rope_theta' must be finite and > 1, got {}", rope_theta));
  const RopeScaling& r = rope_scaling;
  if (r.type == RopeScalingType::kLinear || r.type == RopeScalingType::kLlama3) {
    if (!(r.factor >= 1.0f) || !std::isfinite(r.factor))
      throw ConfigError(fmt::format("Llama config: field 'rope_scaling.factor' must be finite and >= 1, got {}",
                                    r.factor));
  }
  if (r.type == RopeScalingType::kLlama3) {
    if (!(r.low_freq_factor > 0.0f) || !(r.high_freq_factor > r.low_freq_factor) || !std::isfinite(r.high_freq_factor))
      throw ConfigError(fmt::format(
          "Llama config: fields 'rope_scaling.low_freq_factor' ({}) and 'high_freq_factor' ({}) must satisfy "
          "0 < low < high",
          r.low_freq_factor, r.high_freq_factor));
    if (r.original_max_position_embeddings < 1 || r.original_max_position_embeddings > kMaxExtent)
      throw ConfigError(fmt::format(
          "Llama config: field 'rope_scaling.original_max_position_embeddings' must be in [1, {}], got {}",
          kMaxExtent, r.original_max_position_embeddings));
  }
  if (r.type == RopeScalingType::kFreqFactors) {
    if (static_cast<int64_t>(r.freq_factors.size()) != HeadDim() / 2)
      throw ConfigError(fmt::format("Llama config: rope_freqs has {} factors, expected head_dim/2 = {}",
                                    r.freq_factors.size(), HeadDim() / 2));
    for (float f : r.freq_factors)
      if (!(f > 0.0f) || !std::isfinite(f))
        throw ConfigError(fmt::format("Llama config: rope_freqs holds {}, expected positive finite factors", f));
  }
}

std::vector<float> LlamaConfig::RopeInvFreq() const {
  const auto Dh = static_cast<size_t>(HeadDim());
  std::vector<float> inv(Dh / 2);
  kernels::RopeInvFreq(rope_theta, Dh, inv.data());
  const RopeScaling& r = rope_scaling;
  switch (r.type) {
    case RopeScalingType::kNone:
      break;
    case RopeScalingType::kLinear:
      for (float& f : inv) f /= r.factor;
      break;
    case RopeScalingType::kFreqFactors:
      for (size_t j = 0; j < inv.size(); ++j) inv[j] /= r.freq_factors[j];
      break;
    case RopeScalingType::kLlama3: {
      // transformers' _compute_llama3_parameters, elementwise in f32.
      constexpr float kTwoPi = 6.283185307179586f;
      const auto old_len = static_cast<float>(r.original_max_position_embeddings);
      const float low_freq_wavelen = old_len / r.low_freq_factor;
      const float high_freq_wavelen = old_len / r.high_freq_factor;
      for (float& f : inv) {
        const float wavelen = kTwoPi / f;
        const float scaled = wavelen > low_freq_wavelen ? f / r.factor : f;
        const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        if (medium) {
          const float smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
          f = (1.0f - smooth) * scaled / r.factor + smooth * scaled;
        } else {
          f = scaled;
        }
      }
      break;
    }
  }
  return inv;
}

void PermuteRopeRows(float* data, int64_t heads, int64_t head_dim, int64_t cols, bool to_hf) {
  const int64_t half = head_dim / 2;
  std::vector<float> tmp(static_cast<size_t>(head_dim * cols));
  for (int64_t h = 0; h < heads; ++h) {
    float* head = data + h * head_dim * cols;
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t meta = 2 * i + j, hf = j * half + i;
        std::copy_n(head + (to_hf ? meta : hf) * cols, cols, tmp.data() + (to_hf ? hf : meta) * cols);
      }
    std::copy(tmp.begin(), tmp.end(), head);
  }
}

int64_t RopeRowHeads(const LlamaConfig& c, std::string_view hf_name) {
  if (c.rope_layout != kernels::RopeLayout::kAdjacentPairs) return 0;
  if (hf_name.find("self_attn.q_proj.") != std::string_view::npos) return c.num_attention_heads;
  if (hf_name.find("self_attn.k_proj.") != std::string_view::npos) return c.num_key_value_heads;
  return 0;
}

}  // namespace nibble::model
