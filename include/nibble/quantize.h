// Quantizing a model into a Hugging Face checkpoint that transformers + bitsandbytes
// load (NF4/FP4 with double quantization, LLM.int8()) or that nibble loads (int4,
// int8 absmax / zero-point), exporting any model nibble reads as a plain Hugging Face
// directory, and dequantizing such checkpoints back to 16/32-bit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/api.h"

namespace nibble {

struct QuantizeOptions {
  // nf4 | fp4 | int8 (LLM.int8()) | int8-absmax | int8-zeropoint | int4 | none (export only).
  std::string method = "nf4";
  bool double_quant = false;  // bnb_4bit_use_double_quant (nf4 / fp4)
  // 4-bit formats: a power of two in [32, 4096]; int8-absmax: > 0 per block, 0 per row,
  // -1 per tensor; int8-zeropoint: 0 per row, -1 per tensor.
  int64_t blocksize = 64;
  std::string compute_dtype = "float32";  // bnb_4bit_compute_dtype: float32 | bfloat16 | float16
  double threshold = 6.0;                 // llm_int8_threshold (0 disables outlier columns)
  // llm_int8_skip_modules: Linear modules kept unquantized. A module is skipped when its
  // dotted name equals an entry, ends with ".entry", or starts with "entry.".
  std::vector<std::string> skip_modules = {"lm_head"};
  // dtype of the tensors that stay unquantized (and torch_dtype): auto keeps bf16/f16
  // sources as they are and writes everything else as f32; or f32 | bf16 | f16.
  std::string dtype = "auto";
  // Replace an existing OUT directory: only one that holds nothing but model, config and
  // tokenizer files, and is not /, $HOME, the current directory or a parent, or IN's.
  bool overwrite = false;
  // Write tensors that hold NaN or infinity as they are instead of refusing them (the
  // weights being quantized are refused either way: they have no quantized form).
  bool allow_nonfinite = false;
  int num_threads = 0;     // 0: all cores
  // Called after each tensor: tensors done, total, tensor name.
  std::function<void(uint64_t done, uint64_t total, std::string_view tensor)> progress;
};

struct QuantizeReport {
  std::string in_format;
  uint64_t in_file_bytes = 0, out_file_bytes = 0;  // model files (OUT: model.safetensors)
  uint64_t num_params = 0;
  uint64_t num_tensors = 0, num_quantized = 0;  // Linear weights quantized
  uint64_t quantized_params = 0;                // parameters in quantized weights
  uint64_t quantized_bytes = 0;                 // their codes + scales (+ nested scales, zero points)
  uint64_t dense_bytes = 0;                     // bytes of every other tensor as written
  // Error of the quantized weights against their f32 source values.
  double max_abs_error = 0, mean_abs_error = 0, rms_error = 0;
  double seconds = 0;
  uint64_t peak_alloc_bytes = 0;
  std::vector<std::string> files;  // what OUT holds
};

// IN: any model nibble loads (llama2.c .bin, GGUF, HF safetensors dir); OUT: a new
// Hugging Face directory (config.json with quantization_config, model.safetensors,
// tokenizer files) written atomically (a temporary directory beside OUT, exchanged with
// OUT at the end; docs/ARCHITECTURE.md "Writing to a user's disk"). Throws ConfigError
// for bad options, an already-quantized IN, an existing non-empty OUT without
// `overwrite`, or an OUT that `overwrite` may not replace; IoError when the disk lacks
// the room, checked before any work.
NIBBLE_API QuantizeReport Quantize(const std::string& in, const std::string& out, const QuantizeOptions& options);

struct DequantizeOptions {
  std::string dtype = "auto";  // auto: each weight's recorded dtype; or f32 | bf16 | f16
  bool overwrite = false;
  int num_threads = 0;
  std::function<void(uint64_t done, uint64_t total, std::string_view tensor)> progress;
};

// IN: a quantized Hugging Face checkpoint (bitsandbytes 4/8-bit or nibble); OUT: the
// same model with every quantized weight dequantized (spec §6.6) and no
// quantization_config. The report's error fields stay 0.
NIBBLE_API QuantizeReport Dequantize(const std::string& in, const std::string& out, const DequantizeOptions& options);

}  // namespace nibble
