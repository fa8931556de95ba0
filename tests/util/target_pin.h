// Pins Highway's dynamic dispatch to one target for a test and restores the normal
// choice when the test ends (tests run every compiled target against the Ref, C7).
#pragma once

#include <cstdint>

#include "hwy/targets.h"

namespace nibble::test {

class TargetPin {
 public:
  TargetPin() = default;
  TargetPin(const TargetPin&) = delete;
  TargetPin& operator=(const TargetPin&) = delete;
  ~TargetPin() { hwy::SetSupportedTargetsForTest(0); }
  void Pin(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
};

}  // namespace nibble::test
