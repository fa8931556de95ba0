// The CPU cap holds for every dispatch, including the first ones from many threads right
// after the cap changes: Highway 1.0.3 re-chooses an uninitialised dispatch target through
// hwy::SupportedTargets(), which installs the CPU's targets ignoring DisableTargets for a
// moment, so threads dispatching then could run code above the cap (core/cpu_features.cc
// chooses the target itself). Also: parsing, the predicates, and the Highway targets each
// level allows.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/cpu_cap_test.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/cpu_features.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::HWY_NAMESPACE {
int64_t DispatchedTarget() { return HWY_TARGET; }
}  // namespace nibble::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "util/cpu_cap.h"
#include "util/target_pin.h"

namespace nibble {
HWY_EXPORT(DispatchedTarget);
namespace {

// The best (lowest-bit) target the cap allows on this CPU.
int64_t BestAllowed() {
  const int64_t t = CappedHighwayTargets();
  return t & -t;
}

TEST(CpuCap, ParsesTheFourLevelsOnly) {
  for (const char* s : {"native", "avx512", "avx2", "scalar"}) {
    ASSERT_TRUE(ParseCpuLevel(s).has_value()) << s;
    EXPECT_STREQ(CpuLevelName(*ParseCpuLevel(s)), s);
  }
  for (const char* s : {"", "AVX2", "avx3", "sse2", "native "}) EXPECT_FALSE(ParseCpuLevel(s).has_value()) << s;
}

// Every level from the effective one down: Highway's choice is at most the level, the
// hand-written kernels' predicates follow it, and the effective level never exceeds
// what the CPU has.
TEST(CpuCap, LevelsCapHighwayAndPredicates) {
  test::ForEachCap([] {
    const CpuLevel l = EffectiveCpuLevel();
    EXPECT_LE(static_cast<int>(l), static_cast<int>(DetectedCpuLevel()));
    const int64_t best = BestAllowed();
    if (l == CpuLevel::kScalar) {
      EXPECT_TRUE(best == HWY_SCALAR || best == HWY_EMU128) << hwy::TargetName(best);
      EXPECT_FALSE(CpuHasAvx2Fma());
    }
    if (l == CpuLevel::kAvx2) {
      EXPECT_GE(best, HWY_AVX2) << hwy::TargetName(best);  // a lower bit is a better target
    }
    if (l != CpuLevel::kAvx512) {
      EXPECT_FALSE(CpuHasAvx512Vnni());
      EXPECT_FALSE(CpuHasAvx512Bf16());
    }
    EXPECT_EQ(NB_DYNAMIC_DISPATCH(DispatchedTarget)(), best) << hwy::TargetName(best);
    EXPECT_EQ(HighwayTargetName(), hwy::TargetName(best));
  });
}

// After each cap change (and each pin / unpin) the first dispatches come from many
// threads at once; none may run a target the cap excludes. A race, so the check is
// statistical: with the choice left to Highway (the old code) 200 rounds caught it in one
// run of three on a 2-core machine; 600 rounds are run.
TEST(CpuCap, HoldsForTheFirstParallelDispatches) {
  const std::vector<CpuLevel> caps = test::CapsToTest();
  if (caps.size() < 2) GTEST_SKIP() << "one level only here: nothing above the cap to leak into";
  std::atomic<int> above{0}, calls{0};
  auto burst = [&] {  // 8 threads released together into their first dispatch
    const int64_t best = BestAllowed();
    std::latch start(8);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
      threads.emplace_back([&] {
        start.arrive_and_wait();
        const int64_t t = NB_DYNAMIC_DISPATCH(DispatchedTarget)();
        calls++;
        if (t < best) above++;  // a lower bit: a better target than the cap allows
      });
    for (std::thread& t : threads) t.join();
  };
  for (int round = 0; round < 600; ++round) {
    for (CpuLevel cap : caps) {
      test::CpuCapScope scope(cap);
      burst();
      test::TargetPin pin;
      pin.Pin(BestAllowed());
      burst();
    }
  }
  EXPECT_EQ(above.load(), 0) << "of " << calls.load() << " dispatches";
}

}  // namespace
}  // namespace nibble
#endif  // HWY_ONCE
