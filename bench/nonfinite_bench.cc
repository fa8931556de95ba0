// The load-time NaN/Inf scan (kernels/nonfinite.h) over all-finite weights, the case
// every load pays: bytes/s and frac_bw, that rate divided by the read bandwidth probed in
// the same run. A scan at frac_bw ~1 costs what reading the weights once costs.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "hwy/aligned_allocator.h"
#include "core/dtype.h"
#include "kernels/nonfinite.h"
#include "bench_util.h"

namespace nibble::bench {
namespace {

// DRAM: 256 MiB of weights, 8x the 32 MiB L3.
constexpr size_t kDramBytes = size_t{1} << 28;

void BM_FindNonFinite(benchmark::State& state, DType dt, int threads) {
  const size_t eb = GetDTypeInfo(dt).block_bytes;
  const size_t n = kDramBytes / eb;
  auto bytes = hwy::AllocateAligned<uint8_t>(kDramBytes);
  // Finite values of every format: byte pattern 0x3C (0x3C3C: 1.05 in f16, 0.0115 in bf16;
  // 0x3C3C3C3C: 0.0115 in f32; 0x3C: 1.5 in e4m3fn, 1.0 in e5m2).
  for (size_t i = 0; i < kDramBytes; ++i) bytes[i] = 0x3C;
  for (auto _ : state) {
    const int64_t r = kernels::FindNonFinite(threads, dt, bytes.get(), static_cast<int64_t>(n));
    benchmark::DoNotOptimize(r);
    if (r != -1) state.SkipWithError("found a non-finite value in finite data");
  }
  const double read = static_cast<double>(kDramBytes) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(read));
  state.counters["frac_bw"] = benchmark::Counter(read / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3FN})
    for (int threads : {1, 2}) {
      const std::string name =
          std::string("BM_FindNonFinite/") + std::string(DTypeName(dt)) + "/DRAM/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), BM_FindNonFinite, dt, threads)
          ->UseRealTime()
          ->Repetitions(3)
          ->DisplayAggregatesOnly(true);
    }
  return true;
}();

}  // namespace
}  // namespace nibble::bench
