// AdamWStep (src/optim/adamw.h) over 64 Mi parameters (DRAM-sized): bytes/s counting
// p, g, m, v read and p, m, v written (28 bytes per parameter), and frac_bw, that rate over
// the read-bandwidth probe of the same run (writes cost more than reads, so 1.0 is not a
// hard ceiling). The optimizer step is memory-bound; this is its distance from the limit.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstddef>
#include <string>

#include "bench_util.h"
#include "hwy/aligned_allocator.h"
#include "optim/adam8bit.h"
#include "optim/adamw.h"

namespace nibble::bench {
namespace {

// 64 Mi parameters with f32 p, g, m, v (28 bytes per parameter counted), stepped by `step`.
template <class StepFn>
void RunF32State(benchmark::State& state, StepFn step_fn) {
  const size_t n = size_t{1} << 26;
  const int threads = static_cast<int>(state.range(0));
  auto p = hwy::AllocateAligned<float>(n), g = hwy::AllocateAligned<float>(n);
  auto m = hwy::AllocateAligned<float>(n), v = hwy::AllocateAligned<float>(n);
  Lcg lcg;
  for (size_t i = 0; i < n; ++i) p[i] = lcg.Next(), g[i] = lcg.Next(), m[i] = 0.0f, v[i] = 0.0f;
  int64_t step = 0;
  for (auto _ : state) {
    step_fn(threads, p.get(), g.get(), m.get(), v.get(), n, ++step);
    benchmark::ClobberMemory();
  }
  const double bytes = 28.0 * static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["frac_bw"] = benchmark::Counter(bytes / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
}

void BM_AdamWStep(benchmark::State& state) {
  RunF32State(state, [](int threads, float* p, const float* g, float* m, float* v, size_t n, int64_t step) {
    optim::AdamWStep(threads, p, g, m, v, n, step, 1e-3, 0.01, optim::AdamWConfig{});
  });
}

BENCHMARK(BM_AdamWStep)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(3)->DisplayAggregatesOnly(true);

// bitsandbytes' 8-bit AdamW (src/optim/adam8bit.h) over the same 64 Mi parameters: bytes
// counting p and g read, p written, and the two code arrays plus absmax read and written
// (14 + 1/32 bytes per parameter); frac_bw as above. It is not memory-bound: two code
// selections per element (table lookup plus a short scan) and a division and a square root
// per moment dominate. The 32-bit variant (bnb's update with f32 moments) beside it.
void BM_Adam8bitStep(benchmark::State& state) {
  const size_t n = size_t{1} << 26, blocks = n / optim::kAdam8bitBlock;
  const int threads = static_cast<int>(state.range(0));
  auto p = hwy::AllocateAligned<float>(n), g = hwy::AllocateAligned<float>(n);
  auto q1 = hwy::AllocateAligned<uint8_t>(n), q2 = hwy::AllocateAligned<uint8_t>(n);
  auto a1 = hwy::AllocateAligned<float>(blocks), a2 = hwy::AllocateAligned<float>(blocks);
  Lcg lcg;
  for (size_t i = 0; i < n; ++i) p[i] = lcg.Next(), g[i] = lcg.Next(), q1[i] = 127, q2[i] = 0;
  for (size_t b = 0; b < blocks; ++b) a1[b] = 0.0f, a2[b] = 0.0f;
  int64_t step = 0;
  for (auto _ : state) {
    optim::Adam8bitStep(threads, p.get(), g.get(), q1.get(), q2.get(), a1.get(), a2.get(), n, ++step, {});
    benchmark::ClobberMemory();
  }
  const double bytes = (14.0 + 1.0 / 32) * static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["frac_bw"] = benchmark::Counter(bytes / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
}

void BM_Adam32bitBnbStep(benchmark::State& state) {
  RunF32State(state, [](int threads, float* p, const float* g, float* m, float* v, size_t n, int64_t step) {
    optim::Adam32bitStep(threads, p, g, m, v, n, step, optim::BnbAdamHyper{});
  });
}

BENCHMARK(BM_Adam8bitStep)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(3)->DisplayAggregatesOnly(true);
BENCHMARK(BM_Adam32bitBnbStep)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(3)->DisplayAggregatesOnly(true);

}  // namespace
}  // namespace nibble::bench
