// The one list of storage formats (C8): adding a format is one line here.
#include "quant/registry.h"

#include <array>

#include "quant/formats/iq4_nl/iq4_nl.h"
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

}  // namespace

std::span<const FormatTraits* const> AllFormats() { return kFormats; }

const FormatTraits* FindFormat(DType t) {
  for (const FormatTraits* f : kFormats)
    if (f->dtype == t) return f;
  return nullptr;
}

}  // namespace nibble::quant
