// Quantized weights in the Hugging Face (transformers + bitsandbytes) checkpoint layout,
// spec bnb-compatible-quantization.md §6, plus nibble's own layout for the formats
// transformers has no config for.
//
// 4-bit (NF4/FP4), per quantized Linear with prefix P (e.g. model.layers.0.mlp.up_proj):
//   P.weight                               U8 [(n+1)//2, 1]  packed codes, high nibble first
//                                          (another dtype with quant_storage: same bytes)
//   P.weight.absmax                        F32 [nb], or U8 [nb] with double quantization
//   P.weight.quant_map                     F32 [16]  the NF4 table / FP4 table (+0.0 at 8)
//   P.weight.nested_absmax                 F32 [ceil(nb/256)]   (double quant only)
//   P.weight.nested_quant_map              F32 [256]            (double quant only)
//   P.weight.quant_state.bitsandbytes__nf4 U8 [L]  JSON bytes, §6.2 (byte-exact on write):
//     {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [o, i],
//      "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.75}
// 8-bit LLM.int8():  P.weight I8 [out, in] (CB), P.SCB F32 [out], P.weight_format U8 [] = 0.
// nibble formats (int4, int8-absmax, int8-zeropoint), "quant_method": "nibble":
//   P.weight                  U8 [(n+1)//2, 1] (int4) or I8 [out, in]
//   P.weight.scales           F32 [nb]   the step of each block
//   P.weight.zeros            F32 [nb]   zero points (int8-zeropoint only)
//   P.weight.quant_state.nibble U8 [L]  {"method": "int4", "blocksize": 64, "dtype": "float32", "shape": [o, i]}
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "io/safetensors.h"
#include "quant/qtensor.h"
#include "quant/registry.h"

namespace nibble::io {

// Python's repr(float(f)) of a binary32 value widened to double (§6.2 number rules):
// 1.75, 3.0, 0.10000000149011612, 9.999999747378752e-05, 1.0000000272564224e+16.
std::string PythonFloatRepr(float f);

// The quant-state JSON of a 4-bit QTensor, byte-exact as bitsandbytes writes it.
std::string Bnb4bitQuantStateJson(const quant::QTensor& q);

// "float32", "bfloat16", "float16" <-> DType (PyTorch attribute names).
std::string_view TorchDtypeName(DType t);
std::optional<DType> ParseTorchDtype(std::string_view name);
// "float32" | "bfloat16" | "float16" <-> ComputeDtype.
using quant::ComputeDtypeName;  // quant/registry.h

// The `quantization_config` block of config.json (§6.5), typed.
struct QuantizationConfig {
  enum class Kind { kBnb4bit, kBnb8bit, kNibble } kind = Kind::kBnb4bit;
  std::string bnb_4bit_quant_type = "fp4";  // "nf4" | "fp4"
  bool bnb_4bit_use_double_quant = false;
  quant::ComputeDtype bnb_4bit_compute_dtype = quant::ComputeDtype::kF32;
  std::string bnb_4bit_quant_storage = "uint8";
  double llm_int8_threshold = 6.0;
  std::optional<std::vector<std::string>> llm_int8_skip_modules;  // null when absent
  bool llm_int8_has_fp16_weight = false;
  bool llm_int8_enable_fp32_cpu_offload = false;
  std::string nibble_method;        // Kind::kNibble: "int4", "int8-absmax", "int8-zeropoint"
  int64_t nibble_blocksize = 0;     // Kind::kNibble: 64, 0 = per row, -1 = per tensor
};
// The full dictionary transformers writes (every key, sorted by the caller's dump), or
// nibble's own block {"quant_method": "nibble", "method", "blocksize", "skip_modules"}.
nlohmann::json QuantizationConfigToJson(const QuantizationConfig& c);
// Reads the block; `where` names config.json. ConfigError for a quant_method other than
// "bitsandbytes"/"nibble", both or neither of load_in_4bit/8bit, an int threshold, an
// unknown compute dtype or quant type (each naming the key and value).
QuantizationConfig ParseQuantizationConfig(const nlohmann::json& j, std::string_view where);

// llm_int8_skip_modules matching: `module` (a dotted name without ".weight") is skipped
// when it equals an entry, ends with "." + entry, or starts with entry + ".".
bool SkippedModule(std::string_view module, const std::vector<std::string>& skip);

// Appends the tensors of quantized Linear `prefix` (without ".weight") to `out`; the
// spans point into `q` and into `strings` (JSON bytes and quant maps), which must
// outlive the write.
void AppendQuantizedTensors(const std::string& prefix, const quant::QTensor& q,
                            std::vector<SafetensorsWriteTensor>& out, std::vector<std::vector<uint8_t>>& strings);

// A raw tensor of a checkpoint: dtype, shape and the bytes (any alignment).
struct RawTensor {
  DType dtype = DType::kF32;
  Shape shape;
  std::span<const uint8_t> data;
};
using RawLookup = std::function<std::optional<RawTensor>(std::string_view name)>;

// True when `prefix` is a quantized Linear in any of the three layouts (§6.3, §6.4).
bool IsQuantizedLinear(const RawLookup& lookup, const std::string& prefix);
// Reads quantized Linear `prefix`: codes are borrowed (the caller keeps the mapping
// alive), scales and maps copied (widened to f32, §2.7). `config` supplies the compute
// dtype and LLM.int8() threshold. Throws FormatError naming `file` and the tensor for
// every inconsistency (missing pieces, sizes, JSON keys, weight_format 1-3, a
// quant_storage size that does not divide, non-finite scales).
quant::QTensor ReadQuantizedLinear(const RawLookup& lookup, const std::string& prefix, const std::string& file,
                                   const QuantizationConfig& config, Allocator& alloc);

}  // namespace nibble::io
