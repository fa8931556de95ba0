// Inspecting a model file: format, metadata, tensors, parameter count, architecture.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nibble/api.h"
#include "nibble/dtype.h"

namespace nibble {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major (numpy/PyTorch order; GGUF's ne reversed)
  uint64_t num_elems = 0;
  uint64_t num_bytes = 0;
};

struct MetadataEntry {
  std::string key;
  std::string type;   // "string", "u32", "array[string]", … (GGUF value types; "string" elsewhere)
  std::string value;  // human-readable; long arrays are abbreviated with their length
};

struct ModelInfo {
  std::string path;
  std::string format;          // "safetensors", "gguf", "llama2c"
  std::string format_version;  // e.g. "3" for GGUF v3; "legacy" for llama2.c version 0
  uint64_t file_bytes = 0;     // all files together (shards included)
  uint64_t tensor_bytes = 0;  // every tensor, buffers included
  uint64_t param_bytes = 0;   // the tensors counted as parameters
  uint64_t num_params = 0;    // elements of every tensor but buffers (llama2.c's RoPE tables)
  std::vector<MetadataEntry> metadata;
  std::vector<TensorInfo> tensors;
  // Model architecture in Hugging Face field names (hidden_size, num_hidden_layers,
  // num_attention_heads, num_key_value_heads, intermediate_size, vocab_size,
  // max_position_embeddings, rms_norm_eps, rope_theta, …) where the file says them.
  std::vector<std::pair<std::string, std::string>> architecture;

  double BytesPerParam() const { return num_params ? double(param_bytes) / double(num_params) : 0.0; }
};

// Reads a safetensors file or directory (sharded or not; config.json beside it is
// read for the architecture), a GGUF file or a llama2.c checkpoint. Throws
// IoError / FormatError naming the file and what is wrong.
NIBBLE_API ModelInfo Inspect(const std::string& path);

// The same information as one JSON document (for `nibble inspect --json`).
NIBBLE_API std::string ModelInfoToJson(const ModelInfo& info);

}  // namespace nibble
