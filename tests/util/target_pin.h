// Pins Highway's dynamic dispatch to one target for a test and restores the normal
// choice when the test ends (tests run every compiled target against the Ref, C7).
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_features.h"
#include "hwy/targets.h"

namespace nibble::test {

class TargetPin {
 public:
  TargetPin() = default;
  TargetPin(const TargetPin&) = delete;
  TargetPin& operator=(const TargetPin&) = delete;
  ~TargetPin() {
    hwy::SetSupportedTargetsForTest(0);
    SetPinnedHighwayTarget(0);
  }
  void Pin(int64_t target) {
    hwy::SetSupportedTargetsForTest(target);  // resets the dispatch choice (DeInit)
    SetPinnedHighwayTarget(target);           // the dispatch log names the pinned target
  }
};

// The Highway targets a test should run: compiled, supported by the CPU and allowed by
// the cap (NIBBLE_CPU), best first. Not hwy::SupportedAndGeneratedTargets(), which in
// Highway 1.0.3 lifts the cap as a side effect (core/cpu_features.h).
inline std::vector<int64_t> HighwayTargetsToTest() {
  std::vector<int64_t> out;
  for (int64_t t = CappedHighwayTargets(); t != 0; t &= t - 1) out.push_back(t & -t);
  return out;
}

}  // namespace nibble::test
