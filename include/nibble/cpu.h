// The CPU dispatch cap (`--cpu`, NIBBLE_CPU) and the report `nibble --version` prints.
#pragma once

#include <string>
#include <string_view>

#include "nibble/api.h"

namespace nibble {

// Caps the kernels this process may run: "native" (everything the CPU has), "avx512",
// "avx2" or "scalar" (baseline x86-64: Highway's scalar target, no hand-written ISA
// kernels, no oneDNN). The same as NIBBLE_CPU in the environment; this call overrides
// it. Call before the first model is loaded (oneDNN fixes its ISA at its first use).
// Throws ConfigError naming the value otherwise.
NIBBLE_API void SetCpuDispatchCap(std::string_view level);

// Several lines: nibble's version, the CPU (brand and the features nibble uses), the cap
// in force and where it came from, the Highway targets compiled and chosen, and the
// path each kernel family takes under the cap.
NIBBLE_API std::string CpuDispatchReport();

}  // namespace nibble
