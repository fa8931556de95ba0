// What the CPU can do, and the dispatch cap nibble runs under (conventions C7).
//
// Detection: CPUID and XGETBV once per process (the OS must save the ymm / zmm and
// opmask state). The cap: NIBBLE_CPU=native|avx512|avx2|scalar in the environment, or
// SetCpuCap() (the CLI's --cpu), lowers what every kernel family may use, so a process
// started under the cap on an AVX-512 machine runs exactly what an AVX2 or a baseline
// x86-64 machine would run (a cap lowered later in-process keeps oneDNN out instead):
//   - Highway's dynamic dispatch (hwy::DisableTargets: avx2 keeps AVX2 and below,
//     scalar keeps only the baseline target);
//   - every hand-written ISA kernel, through the Cpu* predicates below (a kernel asks
//     for its feature, never CPUID directly);
//   - oneDNN (dnnl_set_max_cpu_isa in kernels/gemm_onednn.cc; off entirely at scalar).
// The cap never raises anything: NIBBLE_CPU=avx512 on an AVX2 machine runs AVX2.
// Together with constexpr tables, this is the one piece of process-wide state in core (C6).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nibble {

enum class CpuLevel : int {
  kScalar = 0,  // baseline x86-64: Highway's scalar target, no hand-written kernels, no oneDNN
  kAvx2 = 1,    // AVX2 + FMA + F16C (x86-64-v3)
  kAvx512 = 2,  // AVX-512 F/BW/VL/DQ with VNNI and BF16 where the CPU has them
  kNative = 3,  // everything the CPU has (the default)
};

// "native", "avx512", "avx2", "scalar"; nullopt for anything else.
std::optional<CpuLevel> ParseCpuLevel(std::string_view s) noexcept;
const char* CpuLevelName(CpuLevel l) noexcept;

// Raw CPUID/XGETBV features (not capped).
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;  // with the OS saving ymm state
  bool avx512 = false;                           // F, BW, VL, DQ with opmask/zmm state saved
  bool avx512_vnni = false, avx512_bf16 = false; // each implies avx512
  bool avx_vnni = false;                         // AVX-VNNI (VEX vpdpbusd, Alder Lake / Zen 5)
  std::string brand;                             // CPUID brand string, trimmed
};
const CpuFeatures& DetectedCpu() noexcept;

// The highest level the CPU itself supports (kAvx512, kAvx2 or kScalar).
CpuLevel DetectedCpuLevel() noexcept;

// The cap in force (native unless NIBBLE_CPU or SetCpuCap said otherwise) and the level
// the kernels actually run at: min(detected, cap).
CpuLevel CpuCap() noexcept;
CpuLevel EffectiveCpuLevel() noexcept;
// Where the cap came from: "default", "NIBBLE_CPU" or "--cpu".
const char* CpuCapSource() noexcept;

// Sets the cap for this process (the CLI's --cpu; it overrides NIBBLE_CPU). Call before
// the first kernel runs: oneDNN reads its ISA cap once, at its first primitive.
void SetCpuCap(CpuLevel cap, const char* source = "--cpu") noexcept;

// Applies NIBBLE_CPU (once) before the first dispatch. Every Highway dispatch goes
// through NB_DYNAMIC_DISPATCH, which calls this; it also runs when the library loads.
// A NIBBLE_CPU value other than the four names prints an error naming the variable and
// ends the process with status 2: a mistyped cap must never silently test native code.
void EnsureCpuCap() noexcept;

// Capped feature predicates for hand-written kernels (detected AND allowed by the cap).
bool CpuHasAvx512Bf16() noexcept;  // AVX512_BF16 (vdpbf16ps), cap >= avx512
bool CpuHasAvx512Vnni() noexcept;  // AVX512_VNNI (vpdpbusd), cap >= avx512
bool CpuHasAvx2Fma() noexcept;     // AVX2 + FMA + F16C, cap >= avx2

// The Highway targets dispatch may choose from now: compiled, supported by the CPU,
// allowed by the cap (and the test pin, if any). Use this, never hwy::SupportedTargets()
// or hwy::SupportedAndGeneratedTargets(): in Highway 1.0.3 those re-initialise the
// dispatch choice ignoring DisableTargets, which silently lifts the cap
// (scripts/check_includes.py refuses them outside core/cpu_features.cc). For the same
// reason every cap or pin change sets the dispatch choice here, from this set.
int64_t CappedHighwayTargets() noexcept;
// The target dynamic dispatch picks now, e.g. "AVX3_DL", "AVX2", "SCALAR"; and the
// targets compiled into this build.
std::string HighwayTargetName();
std::string HighwayCompiledTargets();
// For tests/util/target_pin.h after hwy::SetSupportedTargetsForTest(target) (0: unpinned):
// keeps CappedHighwayTargets and the dispatch log in step with the pin.
void SetPinnedHighwayTarget(int64_t target) noexcept;

// Dispatch log: with NIBBLE_DISPATCH_LOG=FILE in the environment, every process appends
// to FILE at exit one line per code path it ran ("highway AVX2", "int8-activations
// avx2", ...), so scripts/test.sh can print what each capped test run exercised.
// NoteDispatch costs one relaxed atomic load when the log is off.
void NoteDispatch(const char* what) noexcept;
// Notes the Highway target dispatch uses now (cached whenever the cap or pin changes).
void NoteHighwayDispatch() noexcept;
void RefreshHighwayTarget() noexcept;

// One line of `nibble --version`: a kernel family and the code it runs under the cap in
// force. Each layer describes its own dispatch, from the same predicates it dispatches on.
struct KernelPath {
  std::string family;
  std::string path;
};

}  // namespace nibble

// Highway's HWY_DYNAMIC_DISPATCH with the cap applied first. Every dispatch in nibble
// uses this macro (scripts/check_includes.py refuses a bare HWY_DYNAMIC_DISPATCH).
#define NB_DYNAMIC_DISPATCH(fn) (::nibble::EnsureCpuCap(), ::nibble::NoteHighwayDispatch(), HWY_DYNAMIC_DISPATCH(fn))
