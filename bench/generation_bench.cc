// End-to-end speed of a Llama model (GGUF, or an HF directory, quantized ones included) named by env NIBBLE_BENCH_MODEL, as llama-bench measures
// it: pp512 (one batched Forward of 512 tokens) and tg128 (128 one-token Forwards after an
// 8-token prompt), at 1 and 2 threads. Reports tokens/s and, for tg, the memory roofline.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/model_loader.h"
#include "core/exec_context.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "bench_util.h"

namespace nibble::bench {
namespace {

constexpr int64_t kPromptTokens = 512;  // llama-bench's pp512
constexpr int64_t kGenTokens = 128;     // llama-bench's tg128
constexpr int64_t kGenPrefix = 8;       // the short prompt before tg (not timed)

// Token ids both peers feed (bench/peers/llamacpp_tokens_per_s.py uses the same rule):
// a spread over the vocabulary; speed does not depend on which ids they are.
int32_t BenchToken(int64_t i, int64_t vocab) { return static_cast<int32_t>((i * 997 + 13) % vocab); }

// The model, loaded once per process (weights borrowed from the map, WeightDtype::kAuto:
// f32 stays f32, bf16 stays bf16, quantized formats are dequantized to f32).
struct BenchModel {
  std::unique_ptr<ExecContext> load_ctx;  // owns converted weights; outlives `loaded`
  std::unique_ptr<api::LoadedModel> loaded;
  double bytes_per_token = 0;  // weight bytes one generated token reads
  std::string error;           // why there is no model
};

// Weight bytes read per generated token: every matrix of every layer and the classifier
// once, in its stored dtype, plus one embedding row. Norms (~35 KB) and the K/V cache
// (30 layers · 136 positions · 2 · 192 · 4 B = 6 MB for SmolLM2 at the end of tg128)
// are left out: the figure is the weights' roofline.
double WeightBytesPerToken(const model::LlamaModel& m) {
  const model::LlamaWeights& w = m.weights();
  // Quantized Linears count their codes and scales; dense views their bytes.
  auto linear_bytes = [](const model::LinearWeight& lin) {
    return static_cast<double>(lin.q != nullptr ? lin.q->StorageBytes() : lin.dense.NumBytes());
  };
  double bytes = linear_bytes(w.Classifier(m.config()));
  bytes += static_cast<double>(w.embed.NumBytes()) / static_cast<double>(w.embed.shape[0]);
  for (const model::LlamaLayerWeights& l : w.layers) {
    for (const model::LinearWeight* lin : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      bytes += linear_bytes(*lin);
  }
  return bytes;
}

const BenchModel& GetModel() {
  static const BenchModel m = [] {
    BenchModel b;
    const char* path = std::getenv("NIBBLE_BENCH_MODEL");
    if (path == nullptr || *path == '\0') {
      b.error = "set NIBBLE_BENCH_MODEL to a Llama GGUF (e.g. SmolLM2-135M converted to f32)";
      return b;
    }
    try {
      b.load_ctx = std::make_unique<ExecContext>(2);
      api::LoadOptions lo;
      lo.weights = api::WeightDtype::kAuto;
      lo.load_tokenizer = false;
      // NIBBLE_BENCH_INT8_ACTIVATIONS=1: the CLI's --int8-activations.
      const char* i8 = std::getenv("NIBBLE_BENCH_INT8_ACTIVATIONS");
      lo.int8_activations = i8 != nullptr && std::string_view(i8) == "1";
      const char* i8c = std::getenv("NIBBLE_BENCH_INT8_CLASSIFIER");  // --int8-classifier
      lo.int8_classifier = i8c != nullptr && std::string_view(i8c) == "1";
      b.loaded = api::LoadModel(path, lo, *b.load_ctx);
      b.bytes_per_token = WeightBytesPerToken(*b.loaded->model);
    } catch (const std::exception& e) {
      b.error = std::string(path) + ": " + e.what();
    }
    return b;
  }();
  return m;
}

// Arg: threads. One iteration = one Forward of 512 tokens at position 0, last logits only.
void BM_GenerationPp512(benchmark::State& state) {
  const BenchModel& bm = GetModel();
  if (!bm.loaded) {
    state.SkipWithError(bm.error.c_str());
    return;
  }
  const model::LlamaModel& m = *bm.loaded->model;
  const int64_t V = m.config().vocab_size;
  ExecContext ctx(static_cast<int>(state.range(0)));
  model::KvCache cache(ctx.allocator(), m.config(), kPromptTokens);
  std::vector<int32_t> tokens(kPromptTokens);
  for (int64_t i = 0; i < kPromptTokens; ++i) tokens[size_t(i)] = BenchToken(i, V);
  std::vector<float> logits(static_cast<size_t>(V));
  m.Forward(ctx, cache, tokens, 0, logits);  // warm-up: pages of the map, scratch
  for (auto _ : state) {
    m.Forward(ctx, cache, tokens, 0, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tok_s"] =
      benchmark::Counter(static_cast<double>(kPromptTokens * state.iterations()), benchmark::Counter::kIsRate);
}

// Arg: threads. One iteration = 128 one-token Forwards at positions 8 .. 135 after an
// 8-token prompt run once before timing (each iteration rewrites the same cache rows).
// frac_roofline = (weight bytes per token · tokens/s) / read bandwidth probed this run.
void BM_GenerationTg128(benchmark::State& state) {
  const BenchModel& bm = GetModel();
  if (!bm.loaded) {
    state.SkipWithError(bm.error.c_str());
    return;
  }
  const model::LlamaModel& m = *bm.loaded->model;
  const int64_t V = m.config().vocab_size;
  const int threads = static_cast<int>(state.range(0));
  ExecContext ctx(threads);
  model::KvCache cache(ctx.allocator(), m.config(), kGenPrefix + kGenTokens);
  std::vector<int32_t> prefix(kGenPrefix);
  for (int64_t i = 0; i < kGenPrefix; ++i) prefix[size_t(i)] = BenchToken(i, V);
  std::vector<float> logits(static_cast<size_t>(V));
  m.Forward(ctx, cache, prefix, 0, logits);
  for (int64_t i = 0; i < kGenTokens; ++i) {  // warm-up pass over the positions timed below
    const int32_t tok = BenchToken(kGenPrefix + i, V);
    m.Forward(ctx, cache, {&tok, 1}, kGenPrefix + i, logits);
  }
  for (auto _ : state) {
    for (int64_t i = 0; i < kGenTokens; ++i) {
      const int32_t tok = BenchToken(kGenPrefix + i, V);
      m.Forward(ctx, cache, {&tok, 1}, kGenPrefix + i, logits);
    }
    benchmark::DoNotOptimize(logits.data());
  }
  const double tokens = static_cast<double>(kGenTokens * state.iterations());
  state.counters["tok_s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["weight_MB_per_tok"] = bm.bytes_per_token / 1e6;
  state.counters["frac_roofline"] =
      benchmark::Counter(tokens * bm.bytes_per_token / ProbeBandwidth(threads), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_GenerationPp512)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GenerationTg128)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace nibble::bench
