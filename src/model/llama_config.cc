// LlamaConfig::Validate: one ConfigError per bad field, naming it and its value.
#include "model/llama_config.h"

#include <fmt/format.h>

#include <cmath>

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
}

}  // namespace nibble::model
