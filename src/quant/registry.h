// The format registry: every storage format nibble knows, by DType.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "quant/blockwise.h"
#include "quant/format_traits.h"
#include "quant/qtensor.h"

namespace nibble::quant {

// All registered formats.
std::span<const FormatTraits* const> AllFormats();
// The format storing `t`, or nullptr when `t` is not a registered packed format.
const FormatTraits* FindFormat(DType t);

// The blockwise (bitsandbytes-layout) formats; FindBlockwiseFormat is declared in
// qtensor.h (nullptr for kLlmInt8).
std::span<const BlockwiseTraits* const> AllBlockwiseFormats();
// "nf4", "fp4", "int4", "int8-absmax", "int8-zeropoint", "int8" (LLM.int8()).
std::optional<QuantMethod> ParseMethod(std::string_view name);
// bnb_4bit_compute_dtype's names: float32 | bfloat16 | float16 (f32, bf16, f16 accepted);
// ConfigError naming `option` and the choices otherwise.
ComputeDtype ParseComputeDtype(std::string_view name, std::string_view option);
std::string_view ComputeDtypeName(ComputeDtype d);  // "float32", "bfloat16", "float16"

}  // namespace nibble::quant
