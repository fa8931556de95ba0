// Throughput of the bulk dtype conversions (kernels/convert.h) at an L2-sized and a
// DRAM-sized array, 1 and 2 threads. Reports bytes/s (bytes read + bytes written) and
// frac_bw: that rate divided by the read bandwidth probed in the same run.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "hwy/aligned_allocator.h"
#include "kernels/convert.h"
#include "bench_util.h"

namespace nibble::bench {
namespace {

struct Case {
  const char* name;
  DType narrow;
  bool from_f32;  // true: f32 -> narrow; false: narrow -> f32
};
constexpr Case kCases[] = {
    {"f32_to_bf16", DType::kBF16, true},     {"f32_to_f16", DType::kF16, true},
    {"bf16_to_f32", DType::kBF16, false},    {"f16_to_f32", DType::kF16, false},
    {"f32_to_e4m3fn", DType::kF8E4M3FN, true}, {"f32_to_e5m2", DType::kF8E5M2, true},
    {"f32_to_tf32", DType::kTF32, true},
};

// L2: 64 Ki elements = 256 KiB of f32 (+ <= 256 KiB out) fits the 1 MiB per-core L2.
// DRAM: 64 Mi elements = 256 MiB of f32, 8x the 32 MiB L3.
constexpr size_t kL2Elems = size_t{1} << 16;
constexpr size_t kDramElems = size_t{1} << 26;

void BM_Convert(benchmark::State& state, Case c, size_t n, int threads) {
  const size_t eb = GetDTypeInfo(c.narrow).block_bytes;
  auto f32 = hwy::AllocateAligned<float>(n);
  auto narrow = hwy::AllocateAligned<uint8_t>(n * eb);
  // Values in [-2, 2) from an LCG: normal numbers, every page written before timing.
  Lcg lcg;
  for (size_t i = 0; i < n; ++i) f32[i] = lcg.Next(2.0f);
  kernels::ConvertFromF32Parallel(threads, c.narrow, f32.get(), narrow.get(), n);
  for (auto _ : state) {
    if (c.from_f32) {
      kernels::ConvertFromF32Parallel(threads, c.narrow, f32.get(), narrow.get(), n);
    } else {
      kernels::ConvertToF32Parallel(threads, c.narrow, narrow.get(), f32.get(), n);
    }
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(n) * (4 + eb) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["frac_bw"] = benchmark::Counter(bytes / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  for (const Case& c : kCases)
    for (size_t n : {kL2Elems, kDramElems})
      for (int threads : {1, 2}) {
        const std::string name = std::string("BM_Convert/") + c.name + (n == kL2Elems ? "/L2" : "/DRAM") +
                                 "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), BM_Convert, c, n, threads)
            ->UseRealTime()
            ->Repetitions(3)
            ->DisplayAggregatesOnly(true);
      }
  return true;
}();

}  // namespace
}  // namespace nibble::bench
