// The format registry: every storage format nibble knows, by DType.
#pragma once

#include <span>

#include "quant/format_traits.h"

namespace nibble::quant {

// All registered formats.
std::span<const FormatTraits* const> AllFormats();
// The format storing `t`, or nullptr when `t` is not a registered packed format.
const FormatTraits* FindFormat(DType t);

}  // namespace nibble::quant
