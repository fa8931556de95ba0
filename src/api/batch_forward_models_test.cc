// The training forward (model/llama_batch.h) against the inference forward on every model
// in ../shared/data, loaded as `nibble generate` loads them: llama2.c (adjacent-pair RoPE,
// tied), GGUF, and the HF checkpoint (rotate-half, untied), in f32 and with bf16 matrices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "api/model_loader.h"
#include "model/kv_cache.h"
#include "model/llama_batch.h"
#include "util/test_paths.h"

namespace nibble::api {
namespace {

struct ModelCase {
  const char* path;
  WeightDtype dtype;
};

class BatchForwardModels : public ::testing::TestWithParam<ModelCase> {};

// One sequence takes the inference path's kernels row for row: bit-identical. Three
// sequences make M three times larger for every matmul, which may change the GEMM kernel
// (oneDNN from 16 rows) and its summation order: within 1e-5 of the largest |logit| (sums
// over K <= 768 terms; the f32 rounding of such a sum is ~1e-6 relative).
TEST_P(BatchForwardModels, LogitsEqualLlamaModelForward) {
  ExecContext ctx(2);
  LoadOptions lo;
  lo.load_tokenizer = false;
  lo.weights = GetParam().dtype;
  const auto loaded = LoadModel(test::SharedData(GetParam().path), lo, ctx);
  const model::LlamaModel& m = *loaded->model;
  const size_t V = static_cast<size_t>(m.config().vocab_size);
  const size_t T = std::min<size_t>(24, static_cast<size_t>(m.config().max_position_embeddings));
  const size_t B = 3;
  std::mt19937 rng(7);
  std::vector<int32_t> tokens(B * T);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % V);

  std::vector<float> want(B * T * V);
  for (size_t b = 0; b < B; ++b) {
    model::KvCache cache(ctx.allocator(), m.config(), static_cast<int64_t>(T));
    m.Forward(ctx, cache, std::span(tokens).subspan(b * T, T), 0, std::span(want).subspan(b * T * V, T * V),
              model::LogitsMode::kAll);
  }
  const model::LinearCall call{2, &ctx.allocator()};
  Allocator acts_alloc, logits_alloc;
  {
    model::BatchActivations one(acts_alloc, logits_alloc, m.config(), model::Batch{1, T, 0}, 2);
    model::ForwardBatch(m, std::span(tokens).first(T), one, call);
    EXPECT_EQ(std::memcmp(one.logits(), want.data(), T * V * sizeof(float)), 0);
  }
  model::BatchActivations three(acts_alloc, logits_alloc, m.config(), model::Batch{B, T, 0}, 2);
  model::ForwardBatch(m, tokens, three, call);
  float scale = 0;
  for (float x : want) scale = std::max(scale, std::fabs(x));
  double max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(three.logits()[i] - want[i])));
  std::printf("%s: max |diff| %.3g of max |logit| %.3g\n", GetParam().path, max_diff, scale);
  EXPECT_LE(max_diff, 1e-5 * scale);
}

INSTANTIATE_TEST_SUITE_P(SharedData, BatchForwardModels,
                         ::testing::Values(ModelCase{"llama2c-stories260K/stories260K.bin", WeightDtype::kF32},
                                           ModelCase{"llama2c-aidreams260K/aidreams260K.bin", WeightDtype::kF32},
                                           ModelCase{"llama2c-stories260K/stories260K.gguf", WeightDtype::kF32},
                                           ModelCase{"hf-tiny-random-llama", WeightDtype::kF32},
                                           ModelCase{"hf-tiny-random-llama", WeightDtype::kBf16}));

}  // namespace
}  // namespace nibble::api
