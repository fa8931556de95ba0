// AdamWStep (src/optim/adamw.h) over 64 Mi parameters (DRAM-sized): bytes/s counting
// p, g, m, v read and p, m, v written (28 bytes per parameter), and frac_bw, that rate over
// the read-bandwidth probe of the same run (writes cost more than reads, so 1.0 is not a
// hard ceiling). The optimizer step is memory-bound; this is its distance from the limit.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench_util.h"
#include "hwy/aligned_allocator.h"
#include "optim/adamw.h"

namespace nibble::bench {
namespace {

void BM_AdamWStep(benchmark::State& state) {
  const size_t n = size_t{1} << 26;
  const int threads = static_cast<int>(state.range(0));
  auto p = hwy::AllocateAligned<float>(n), g = hwy::AllocateAligned<float>(n);
  auto m = hwy::AllocateAligned<float>(n), v = hwy::AllocateAligned<float>(n);
  Lcg lcg;
  for (size_t i = 0; i < n; ++i) p[i] = lcg.Next(), g[i] = lcg.Next(), m[i] = 0.0f, v[i] = 0.0f;
  const optim::AdamWConfig c;
  int64_t step = 0;
  for (auto _ : state) {
    optim::AdamWStep(threads, p.get(), g.get(), m.get(), v.get(), n, ++step, 1e-3, 0.01, c);
    benchmark::ClobberMemory();
  }
  const double bytes = 28.0 * static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["frac_bw"] = benchmark::Counter(bytes / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_AdamWStep)->Arg(1)->Arg(2)->UseRealTime()->Repetitions(3)->DisplayAggregatesOnly(true);

}  // namespace
}  // namespace nibble::bench
