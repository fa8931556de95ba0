// Quantized-weight kernels at the shape, a 4096 x 14336 Linear (Llama-3-8B's
// down_proj), N(0, 0.02) weights: the 4-bit GEMV (NF4, NF4 + double quant, FP4, bf16
// compute, int8 activations), LLM.int8() and int8-absmax GEMV, NF4 quantize and dequantize. GEMV weights
// are cold: the benchmark rotates through copies totalling >= 4x the 32 MiB L3, so each
// call streams its weight from DRAM. Reports weight bytes/s (codes + scales) and
// frac_bw, that rate over the read bandwidth probed in this run (C10).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "bench_util.h"
#include "probes.h"
#include "core/allocator.h"
#include "hwy/aligned_allocator.h"
#include "quant/qgemv.h"
#include "quant/qtensor.h"

namespace nibble::bench {
namespace {

constexpr int64_t kN = 4096, kK = 14336;
constexpr size_t kL3Bytes = size_t{32} << 20;

// N(0, 0.02) weights, generated once per process (58.7 M values).
const std::vector<float>& Weights() {
  static const std::vector<float> w = [] {
    std::vector<float> v(static_cast<size_t>(kN * kK));
    std::mt19937 rng(2024);
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (float& x : v) x = d(rng);
    return v;
  }();
  return w;
}

// `copies` independent QTensors with the same content in separate memory.
struct ColdWeights {
  Allocator alloc;
  std::vector<std::unique_ptr<quant::QTensor>> q;
};

// rows = kN: cold (copies >= 4x L3); rows < kN: one warm copy of the first `rows` rows.
std::unique_ptr<ColdWeights> MakeCold(const quant::QuantizeSpec& spec, int64_t rows = kN) {
  auto c = std::make_unique<ColdWeights>();
  auto first = std::make_unique<quant::QTensor>(
      quant::QuantizeMatrix(c->alloc, Weights().data(), Shape{rows, kK}, DType::kF32, spec, 2));
  const size_t bytes = first->StorageBytes();
  const size_t copies = rows < kN ? 1 : std::max<size_t>(2, (4 * kL3Bytes + bytes - 1) / bytes);
  c->q.push_back(std::move(first));
  while (c->q.size() < copies) {
    auto q = std::make_unique<quant::QTensor>(
        quant::QuantizeMatrix(c->alloc, Weights().data(), Shape{rows, kK}, DType::kF32, spec, 2));
    c->q.push_back(std::move(q));
  }
  return c;
}

void RunGemv(benchmark::State& state, const quant::QuantizeSpec& spec, int64_t rows = kN, bool int8_act = false) {
  const int threads = static_cast<int>(state.range(0));
  const auto cold = MakeCold(spec, rows);
  const quant::QLinearPolicy policy{.int8_activations = int8_act};
  auto x = hwy::AllocateAligned<float>(kK);
  auto y = hwy::AllocateAligned<float>(kN);
  Lcg lcg;
  for (int64_t i = 0; i < kK; ++i) x[i] = lcg.Next();
  size_t i = 0;
  for (auto _ : state) {
    quant::QGemv(threads, x.get(), *cold->q[i], y.get(), 1, policy);
    benchmark::ClobberMemory();
    i = (i + 1) % cold->q.size();
  }
  const double bytes = static_cast<double>(cold->q[0]->StorageBytes());
  const double iters = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes * iters));
  state.counters["frac_bw"] = benchmark::Counter(bytes * iters / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
  state.counters["copies"] = static_cast<double>(cold->q.size());
  state.counters["bits_per_w"] = 8.0 * bytes / static_cast<double>(rows * kK);
}

void BM_GemvNf4(benchmark::State& s) { RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64}); }
void BM_GemvNf4DoubleQuant(benchmark::State& s) {
  RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64, .double_quant = true});
}
void BM_GemvNf4Bf16Compute(benchmark::State& s) {
  RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64, .compute = quant::ComputeDtype::kBf16});
}
// Warm: 512 rows (3.7 MB NF4, L3-resident): the kernel's compute ceiling.
void BM_GemvNf4Warm(benchmark::State& s) { RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64}, 512); }
void BM_GemvNf4Bf16ComputeWarm(benchmark::State& s) {
  RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64, .compute = quant::ComputeDtype::kBf16}, 512);
}
// The explicit int8-activation option (qgemv4_i8.h: vpdpbusd), llama.cpp's arithmetic.
void BM_GemvNf4Int8Act(benchmark::State& s) { RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64}, kN, true); }
void BM_GemvNf4DoubleQuantInt8Act(benchmark::State& s) {
  RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64, .double_quant = true}, kN, true);
}
void BM_GemvNf4Int8ActWarm(benchmark::State& s) {
  RunGemv(s, {.method = quant::QuantMethod::kNf4, .blocksize = 64}, 512, true);
}
void BM_GemvFp4(benchmark::State& s) { RunGemv(s, {.method = quant::QuantMethod::kFp4, .blocksize = 64}); }
void BM_GemvInt8Absmax(benchmark::State& s) {
  RunGemv(s, {.method = quant::QuantMethod::kInt8Absmax, .blocksize = 0});
}
void BM_GemvLlmInt8(benchmark::State& s) { RunGemv(s, {.method = quant::QuantMethod::kLlmInt8, .threshold = 6.0f}); }

// The int8-activation kernel on a prompt: M = 512 tokens x SmolLM2-135M's gate_proj
// (N = 1536, K = 576, NF4) and down_proj (N = 576, K = 1536): compute-bound. Reports
// GMAC/s and frac_peak, the multiply-adds per second over the f32 FMA peak probed in
// this run (one f32 FMA lane = one MAC: the limit an f32 GEMM of the same shape has).
void RunPromptInt8(benchmark::State& state, int64_t N, int64_t K) {
  const int threads = static_cast<int>(state.range(0));
  constexpr int64_t M = 512;
  Allocator alloc;
  std::vector<float> w(static_cast<size_t>(N * K)), x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 0.02f);
  for (float& v : w) v = d(rng);
  for (float& v : x) v = d(rng) * 50.0f;
  quant::QTensor q = quant::QuantizeMatrix(alloc, w.data(), Shape{N, K}, DType::kF32,
                                           {.method = quant::QuantMethod::kNf4, .blocksize = 64}, 2);
  for (auto _ : state) {
    quant::QGemv(threads, x.data(), q, y.data(), M, quant::QLinearPolicy{.int8_activations = true});
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(M * N * K) * static_cast<double>(state.iterations());
  state.counters["GMAC_s"] = benchmark::Counter(macs / 1e9, benchmark::Counter::kIsRate);
  state.counters["frac_peak"] = benchmark::Counter(2.0 * macs / ProbeFmaPeak(threads), benchmark::Counter::kIsRate);
}
void BM_PromptNf4Int8ActGate(benchmark::State& s) { RunPromptInt8(s, 1536, 576); }
void BM_PromptNf4Int8ActDown(benchmark::State& s) { RunPromptInt8(s, 576, 1536); }

// Quantize / dequantize throughput on the same 58.7 M weights (235 MB of f32: DRAM).
void BM_QuantizeNf4(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const std::vector<float>& w = Weights();
  Allocator alloc;
  for (auto _ : state) {
    auto q = quant::QuantizeMatrix(alloc, w.data(), Shape{kN, kK}, DType::kF32,
                                   {.method = quant::QuantMethod::kNf4, .blocksize = 64}, threads);
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(w.size() * sizeof(float)) * state.iterations());  // f32 input
}

void BM_DequantizeNf4(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  Allocator alloc;
  const quant::QTensor q = quant::QuantizeMatrix(alloc, Weights().data(), Shape{kN, kK}, DType::kF32,
                                                 {.method = quant::QuantMethod::kNf4, .blocksize = 64}, 2);
  std::vector<float> out(static_cast<size_t>(kN * kK));
  for (auto _ : state) {
    quant::DequantizeMatrix(q, out.data(), threads);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(kN * kK * state.iterations());                                   // elements/s
  state.SetBytesProcessed(static_cast<int64_t>(out.size() * sizeof(float)) * state.iterations());  // f32 output
}

// Arg: threads.
BENCHMARK(BM_GemvNf4)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4DoubleQuant)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4Bf16Compute)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4Warm)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4Bf16ComputeWarm)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4Int8Act)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4DoubleQuantInt8Act)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvNf4Int8ActWarm)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvFp4)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvInt8Absmax)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_GemvLlmInt8)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_PromptNf4Int8ActGate)->Arg(1)->Arg(2)->Repetitions(3)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_PromptNf4Int8ActDown)->Arg(1)->Arg(2)->Repetitions(3)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_QuantizeNf4)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();
BENCHMARK(BM_DequantizeNf4)->Arg(1)->Arg(2)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime();

}  // namespace
}  // namespace nibble::bench
