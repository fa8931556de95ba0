// The one list of storage formats (C8): adding a format is one line here.
#include "quant/registry.h"

#include <fmt/format.h>

#include "nibble/error.h"

#include "quant/qtensor.h"

#include <array>

#include "quant/formats/fp4/fp4.h"
#include "quant/formats/int4/int4.h"
#include "quant/formats/int8_absmax/int8_absmax.h"
#include "quant/formats/int8_zeropoint/int8_zeropoint.h"
#include "quant/formats/iq4_nl/iq4_nl.h"
#include "quant/formats/nf4/nf4.h"
#include "quant/formats/q2_k/q2_k.h"
#include "quant/formats/q3_k/q3_k.h"
#include "quant/formats/q4_0/q4_0.h"
#include "quant/formats/q4_1/q4_1.h"
#include "quant/formats/q4_k/q4_k.h"
#include "quant/formats/q5_0/q5_0.h"
#include "quant/formats/q5_1/q5_1.h"
#include "quant/formats/q5_k/q5_k.h"
#include "quant/formats/q6_k/q6_k.h"
#include "quant/formats/q8_0/q8_0.h"

namespace nibble::quant {
namespace {

// ggml block types, in ggml type-id order.
constexpr std::array kFormats = {
    &q4_0::kTraits,
    &q4_1::kTraits,
    &q5_0::kTraits,
    &q5_1::kTraits,
    &q8_0::kTraits,
    &q2_k::kTraits,
    &q3_k::kTraits,
    &q4_k::kTraits,
    &q5_k::kTraits,
    &q6_k::kTraits,
    &iq4_nl::kTraits,
};

// Blockwise formats (bitsandbytes layout), in QuantMethod order.
constexpr std::array kBlockwise = {
    &nf4::kTraits, &fp4::kTraits, &int4::kTraits, &int8_absmax::kTraits, &int8_zeropoint::kTraits,
};
static_assert(kBlockwise.size() + 1 == kNumQuantMethods, "every QuantMethod but kLlmInt8 has a format");

// One name per method (C5: the one table), the CLI's --method and docs/FORMATS.md.
constexpr std::string_view kMethodNames[] = {"nf4", "fp4", "int4", "int8-absmax", "int8-zeropoint", "int8"};
static_assert(std::size(kMethodNames) == kNumQuantMethods);

}  // namespace

std::span<const FormatTraits* const> AllFormats() { return kFormats; }

std::span<const BlockwiseTraits* const> AllBlockwiseFormats() { return kBlockwise; }

const BlockwiseTraits* FindBlockwiseFormat(QuantMethod m) {
  for (const BlockwiseTraits* f : kBlockwise)
    if (f->method == m) return f;
  return nullptr;
}

std::string_view MethodName(QuantMethod m) { return kMethodNames[static_cast<int>(m)]; }

std::optional<QuantMethod> ParseMethod(std::string_view name) {
  for (int i = 0; i < kNumQuantMethods; ++i)
    if (kMethodNames[i] == name) return static_cast<QuantMethod>(i);
  return std::nullopt;
}

ComputeDtype ParseComputeDtype(std::string_view n, std::string_view option) {
  if (n == "float32" || n == "f32") return ComputeDtype::kF32;
  if (n == "bfloat16" || n == "bf16") return ComputeDtype::kBf16;
  if (n == "float16" || n == "f16") return ComputeDtype::kF16;
  throw ConfigError(fmt::format("{}: expected float32, bfloat16 or float16, got \"{}\"", option, n));
}

std::string_view ComputeDtypeName(ComputeDtype d) {
  switch (d) {
    case ComputeDtype::kF32: return "float32";
    case ComputeDtype::kBf16: return "bfloat16";
    case ComputeDtype::kF16: return "float16";
  }
  return "?";
}

const FormatTraits* FindFormat(DType t) {
  for (const FormatTraits* f : kFormats)
    if (f->dtype == t) return f;
  return nullptr;
}

}  // namespace nibble::quant
