// Runs test code under each CPU dispatch cap (core/cpu_features.h) this process may use:
// every level from the effective one down to scalar, so an AVX-512 machine also checks
// the AVX2 and scalar paths in-process; under NIBBLE_CPU, that level alone. oneDNN's ISA is fixed once per process
// and is not changed by the scope (ctest reruns whole binaries under NIBBLE_CPU for it).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/cpu_features.h"

namespace nibble::test {

// Sets the cap for the scope's lifetime and restores the previous one.
class CpuCapScope {
 public:
  explicit CpuCapScope(CpuLevel cap) : saved_(CpuCap()), saved_source_(CpuCapSource()) { SetCpuCap(cap, "test"); }
  ~CpuCapScope() { SetCpuCap(saved_, saved_source_); }
  CpuCapScope(const CpuCapScope&) = delete;
  CpuCapScope& operator=(const CpuCapScope&) = delete;

 private:
  CpuLevel saved_;
  const char* saved_source_;
};

// The levels to test, best first: {avx512, avx2, scalar} on an AVX-512 machine. A process
// started under NIBBLE_CPU tests that level only: scripts/test.sh runs each capped level
// as its own ctest pass, so looping again there would repeat the native pass's work.
inline std::vector<CpuLevel> CapsToTest() {
  if (std::string(CpuCapSource()) == "NIBBLE_CPU") return {EffectiveCpuLevel()};
  std::vector<CpuLevel> caps;
  for (int l = static_cast<int>(EffectiveCpuLevel()); l >= 0; --l) caps.push_back(static_cast<CpuLevel>(l));
  return caps;
}

inline std::string CapTrace(CpuLevel l) { return std::string("cap=") + CpuLevelName(l); }

// Runs `body` once under each of CapsToTest(), with the cap in the failure trace.
template <class F>
void ForEachCap(const F& body) {
  for (CpuLevel cap : CapsToTest()) {
    SCOPED_TRACE(CapTrace(cap));
    CpuCapScope scope(cap);
    body();
  }
}

}  // namespace nibble::test
