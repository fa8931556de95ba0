// Converting the float tensors of a model file to another float dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include <string_view>

#include "nibble/api.h"
#include "nibble/dtype.h"

namespace nibble {

struct ConvertOptions {
  // Target dtype: f32, f16, bf16, tf32, f8_e4m3fn or f8_e5m2. tf32 is written as
  // F32 holding tf32-rounded values; GGUF holds only f32, f16 and bf16.
  DType dtype = DType::kF16;
  // Keep normalisation weights (names containing "norm") in f32.
  bool keep_norms_f32 = false;
  int num_threads = 0;  // 0: all cores
  // Replace an existing OUT file (atomically: OUT is the old or the new file at every
  // instant). Without it an existing OUT is a ConfigError, as for quantize and export.
  bool overwrite = false;
  // Write NaN/inf source values through instead of refusing them (ConfigError naming
  // the tensor and the first bad index).
  bool allow_nonfinite = false;
  // Called after each tensor: bytes of input processed so far, total, tensor name.
  std::function<void(uint64_t done, uint64_t total, std::string_view tensor)> progress;
};

struct ConvertReport {
  std::string in_format, out_format;
  uint64_t in_file_bytes = 0, out_file_bytes = 0;
  uint64_t in_tensor_bytes = 0, out_tensor_bytes = 0;
  uint64_t num_params = 0;
  uint64_t num_tensors = 0, num_converted = 0;  // converted = dtype changed
  // Error introduced, measured on every converted element as |out - in| in f32
  // (quantized GGUF inputs are measured against their dequantized values).
  double max_abs_error = 0, mean_abs_error = 0;
  double max_rel_error = 0;  // max |out - in| / |in| over elements with |in| >= 1e-30
  uint64_t num_nonfinite_out = 0;  // elements that became inf or NaN from finite inputs
  // The fp16 pitfalls, named: each tensor with values beyond the target's finite range
  // (f16: ±65504), and (f16) an rms_norm_eps below f16's smallest normal 6.1e-5.
  std::vector<std::string> warnings;
  double seconds = 0;
  uint64_t peak_alloc_bytes = 0;  // peak bytes held through nibble's allocator
};

// Converts IN (safetensors file/dir, GGUF, llama2.c .bin) to OUT. The output format
// follows OUT's extension: ".safetensors" or ".gguf" (GGUF output needs GGUF input,
// whose metadata it keeps). Integer and bool tensors are copied unchanged;
// quantized GGUF tensors are dequantized first; llama2.c's legacy RoPE tables are
// not written (they are derived, and no other tool reads them). OUT is written atomically.
// Throws ConfigError for an unsupported combination, FormatError/IoError for bad files.
NIBBLE_API ConvertReport Convert(const std::string& in, const std::string& out, const ConvertOptions& options);

}  // namespace nibble
