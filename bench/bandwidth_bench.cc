// nibble_bench entry point: measures the read bandwidth for 1 and 2 threads once at
// startup (probes.h), reports it as its own benchmark, then runs every registered
// benchmark, which divides its bytes/s by that figure.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "probes.h"

namespace nibble::bench {
namespace {

constexpr size_t kProbeBytes = size_t{1} << 30;  // 1 GiB: 32x the 32 MiB L3 of the bench machine
constexpr int kProbePasses = 5;

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) state.SetIterationTime(1.0);  // the figure is the startup probe's
  state.counters["probe_GBps"] = ProbeBandwidth(threads) / 1e9;
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->Iterations(1)->UseManualTime();

}  // namespace
}  // namespace nibble::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (int threads : {1, 2}) {
    const double bw = nibble::bench::MeasureReadBandwidth(threads, nibble::bench::kProbeBytes, nibble::bench::kProbePasses);
    nibble::bench::SetProbeBandwidth(threads, bw);
    std::fprintf(stderr, "read bandwidth probe, %d thread(s), 1 GiB: %.2f GB/s\n", threads, bw / 1e9);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
