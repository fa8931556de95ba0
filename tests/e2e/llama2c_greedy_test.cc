// End-to-end check of issue #4 on the llama2.c checkpoints: stories260K.bin + tok512.bin,
// greedy from BOS for 256 steps with the KV cache, decoded as llama2.c run.c does, must
// reproduce stories260K_greedy_t0_expected.txt byte for byte; aidreams260K must run and
// read as English; batched prompt logits must equal token-by-token logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/exec_context.h"
#include "io/llama2c.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "model/sampler.h"
#include "util/test_paths.h"

namespace nibble {
namespace {

constexpr int32_t kBos = 1;  // llama2.c: <s>; run.c ends a sample when it is generated again
constexpr int kSteps = 256;  // run.c -n 256: forwards at positions 0 .. 255
// Batched (M = T) vs token-by-token logits: each dot product and attention row runs in
// the same order for any M, so they agree to rounding; 1e-5 of the logit scale bounds
// any reassociation a future tiling might add (~K·u with K <= 172 is 1e-5).
constexpr double kTolBatchedRel = 1e-5;

// Model and tokenizer of a llama2.c directory, with the weights borrowed from the map.
struct Llama2cModel {
  io::Llama2cCheckpoint ckpt;
  io::Llama2cTokenizer tok;
  model::LlamaConfig config;
  std::unique_ptr<model::LlamaModel> model;
};

std::unique_ptr<Llama2cModel> Load(const std::string& bin, const std::string& tok) {
  auto m = std::make_unique<Llama2cModel>(
      Llama2cModel{io::Llama2cCheckpoint::Open(test::SharedData(bin)), {}, {}, nullptr});
  const io::Llama2cConfig& h = m->ckpt.config();
  m->tok = io::Llama2cTokenizer::Open(test::SharedData(tok), h.vocab_size);
  model::LlamaConfig& c = m->config;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.vocab_size = h.vocab_size;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5f;      // llama2.c run.c rmsnorm
  c.rope_theta = 10000.0f;     // llama2.c run.c RoPE
  c.tie_word_embeddings = h.shared_classifier;
  c.rope_layout = kernels::RopeLayout::kAdjacentPairs;  // q/k rows keep the Meta order
  const auto lookup = [&](std::string_view name) -> std::optional<ConstTensorView> {
    for (const io::Llama2cTensor& t : m->ckpt.tensors())
      if (t.name == name) return ConstTensorView{t.data.data(), DType::kF32, t.shape};
    return std::nullopt;
  };
  m->model = std::make_unique<model::LlamaModel>(c, model::BindHfTensors(c, lookup));
  return m;
}

// run.c decode + safe_printf: after BOS a leading space is dropped; "<0xNN>" is one raw
// byte; a lone non-printable, non-space byte prints nothing.
std::string Piece(const io::Llama2cTokenizer& tok, int32_t prev, int32_t id) {
  std::string piece = tok.pieces[static_cast<size_t>(id)];
  if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  unsigned byte = 0;
  if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) piece = std::string(1, static_cast<char>(byte));
  if (piece.size() == 1 && !std::isprint(static_cast<unsigned char>(piece[0])) &&
      !std::isspace(static_cast<unsigned char>(piece[0])))
    return "";
  return piece;
}

// Greedy decode from BOS as run.c does; returns the ids (BOS first) and the text.
std::pair<std::vector<int32_t>, std::string> Greedy(const Llama2cModel& m, int steps, int threads) {
  ExecContext ctx(threads);
  model::KvCache cache(ctx.allocator(), m.config, m.config.max_position_embeddings);
  model::SamplerConfig sc;
  sc.temperature = 0.0f;
  model::Sampler sampler(sc);
  std::vector<float> logits(static_cast<size_t>(m.config.vocab_size));
  std::vector<int32_t> ids = {kBos};
  std::string text;
  for (int pos = 0; pos < steps; ++pos) {
    const int32_t token = ids.back();
    m.model->Forward(ctx, cache, std::span(&ids.back(), 1), pos, logits);
    const int32_t next = sampler.Sample(logits, ids);
    if (next == kBos) break;
    text += Piece(m.tok, token, next);
    ids.push_back(next);
  }
  return {ids, text + "\n"};  // run.c prints a newline after the sample
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Max |batched - token-by-token| over all positions, and the logit scale (max |logit|).
std::pair<double, double> BatchedVsStepwise(const Llama2cModel& m, const std::vector<int32_t>& ids, int threads) {
  ExecContext ctx(threads);
  const size_t V = static_cast<size_t>(m.config.vocab_size), T = ids.size();
  model::KvCache batched_cache(ctx.allocator(), m.config, static_cast<int64_t>(T));
  model::KvCache step_cache(ctx.allocator(), m.config, static_cast<int64_t>(T));
  std::vector<float> batched(T * V), step(V);
  m.model->Forward(ctx, batched_cache, ids, 0, batched, model::LogitsMode::kAll);
  double max_diff = 0.0, scale = 0.0;
  for (size_t t = 0; t < T; ++t) {
    m.model->Forward(ctx, step_cache, std::span(ids).subspan(t, 1), static_cast<int64_t>(t), step);
    for (size_t i = 0; i < V; ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(step[i] - batched[t * V + i])));
      scale = std::max(scale, static_cast<double>(std::fabs(batched[t * V + i])));
    }
  }
  return {max_diff, scale};
}

TEST(Llama2cGreedyTest, Stories260KReproducesLlama2cText) {
  const auto m = Load("llama2c-stories260K/stories260K.bin", "llama2c-stories260K/tok512.bin");
  const std::string want = ReadFile(test::SharedData("llama2c-stories260K/stories260K_greedy_t0_expected.txt"));
  ASSERT_FALSE(want.empty());
  for (int threads : {1, 2}) {
    const auto [ids, text] = Greedy(*m, kSteps, threads);
    EXPECT_EQ(text, want) << "threads=" << threads;
  }
}

TEST(Llama2cGreedyTest, Stories260KBatchedPromptEqualsTokenByToken) {
  const auto m = Load("llama2c-stories260K/stories260K.bin", "llama2c-stories260K/tok512.bin");
  const std::vector<int32_t> ids = Greedy(*m, 64, 1).first;
  for (int threads : {1, 2}) {
    const auto [diff, scale] = BatchedVsStepwise(*m, ids, threads);
    RecordProperty("max_abs_diff_threads" + std::to_string(threads), std::to_string(diff));
    EXPECT_LE(diff, kTolBatchedRel * scale) << "threads=" << threads << " scale=" << scale;
  }
}

TEST(Llama2cGreedyTest, AiDreams260KRunsAndReadsAsEnglish) {
  const auto m = Load("llama2c-aidreams260K/aidreams260K.bin", "llama2c-aidreams260K/tok512.bin");
  const auto [ids, text] = Greedy(*m, 100, 1);
  ASSERT_GT(ids.size(), 20u) << text;
  // The opening that ../shared/data/README.md documents for greedy decoding from BOS
  // (the model emits an opening quote mark first).
  EXPECT_EQ(text.find("Echoes of vectors unfold, a gentle hum of precision"), 1u) << text;
  // English-looking: nearly all characters are letters, spaces or common punctuation,
  // and there are several words of 3+ letters.
  size_t plain = 0, words = 0, run = 0;
  for (char ch : text) {
    const bool letter = std::isalpha(static_cast<unsigned char>(ch)) != 0;
    plain += letter || std::string(" ,.;:'\"!?-\n").find(ch) != std::string::npos;
    if (letter) {
      ++run;
    } else {
      words += run >= 3;
      run = 0;
    }
  }
  EXPECT_GE(static_cast<double>(plain), 0.95 * static_cast<double>(text.size())) << text;
  EXPECT_GE(words, 10u) << text;
  RecordProperty("text", text);
  const auto [diff, scale] = BatchedVsStepwise(*m, std::vector<int32_t>(ids.begin(), ids.begin() + 48), 2);
  RecordProperty("max_abs_diff", std::to_string(diff));
  EXPECT_LE(diff, kTolBatchedRel * scale) << "scale=" << scale;
}

}  // namespace
}  // namespace nibble
