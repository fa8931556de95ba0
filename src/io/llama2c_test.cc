// llama2.c checkpoint and tokenizer reader tests: the two shared 260K models, a synthetic
// unshared-classifier file, and the corrupt-file catalogue.
// Reference: /work/shared/data/README.md (headers, float counts, tokenizer contents) and
// llama2.c's model.py precompute_freqs_cis for the RoPE tables stored in the files.
#include "io/llama2c.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "nibble/error.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::io {
namespace {

// The stored RoPE tables were computed in f32 (freqs rounded to f32, then pos * freq):
// the argument is off by up to pos(511) x 2^-24 relative, so cos/sin agree to ~3e-5.
constexpr double kTolRope = 1e-4;

// header = {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}.
using Header = std::array<int32_t, 7>;

// Float count of a legacy file, written out independently of the reader's table.
int64_t FloatCount(const Header& h) {
  const int64_t D = h[0], F = h[1], L = h[2], KVD = h[4] * (h[0] / h[3]), V = std::abs(h[5]), S = h[6];
  const int64_t Dh = D / h[3];
  return V * D + L * D + 2 * L * D * D + 2 * L * KVD * D + L * D + 3 * L * F * D + D + S * Dh + (h[5] < 0 ? V * D : 0);
}

// Header, then float k = k for every k (so a tensor's first value is its float offset).
std::vector<uint8_t> MakeCheckpoint(const Header& h, int64_t extra_bytes = 0) {
  std::vector<uint8_t> b(28);
  std::memcpy(b.data(), h.data(), 28);
  const int64_t n = FloatCount(h);
  b.resize(static_cast<size_t>(28 + n * 4 + extra_bytes));
  for (int64_t k = 0; k < n && 28 + k * 4 + 4 <= static_cast<int64_t>(b.size()); ++k) {
    const float f = static_cast<float>(k);
    std::memcpy(b.data() + 28 + k * 4, &f, 4);
  }
  return b;
}

float FirstValue(const Llama2cTensor& t) {
  float f;
  std::memcpy(&f, t.data.data(), 4);
  return f;
}

const Llama2cTensor* Find(const Llama2cCheckpoint& ck, const std::string& name) {
  for (const auto& t : ck.tensors())
    if (t.name == name) return &t;
  return nullptr;
}

// Checks names, shapes, contiguity and the stored RoPE tables of a real checkpoint.
void CheckRealCheckpoint(const Llama2cCheckpoint& ck, int64_t want_floats) {
  const auto& c = ck.config();
  const int64_t D = c.dim, F = c.hidden_dim, Dh = c.dim / c.n_heads, KVD = c.n_kv_heads * Dh;
  ASSERT_EQ(ck.tensors().size(), static_cast<size_t>(1 + 9 * c.n_layers + 1 + 2));
  int64_t floats = 0;
  const uint8_t* next = ck.tensors().front().data.data();
  for (const auto& t : ck.tensors()) {
    EXPECT_EQ(t.data.data(), next) << t.name;  // file order, no gaps
    EXPECT_EQ(static_cast<int64_t>(t.data.size()), t.shape.NumElems() * 4) << t.name;
    next = t.data.data() + t.data.size();
    floats += t.shape.NumElems();
  }
  EXPECT_EQ(floats, want_floats);
  EXPECT_EQ(Find(ck, "lm_head.weight"), nullptr);  // shared classifier
  EXPECT_EQ(Find(ck, "model.embed_tokens.weight")->shape, Shape({c.vocab_size, D}));
  EXPECT_EQ(Find(ck, "model.norm.weight")->shape, Shape({D}));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    EXPECT_EQ(Find(ck, p + "input_layernorm.weight")->shape, Shape({D}));
    EXPECT_EQ(Find(ck, p + "post_attention_layernorm.weight")->shape, Shape({D}));
    EXPECT_EQ(Find(ck, p + "self_attn.q_proj.weight")->shape, Shape({D, D}));
    EXPECT_EQ(Find(ck, p + "self_attn.k_proj.weight")->shape, Shape({KVD, D}));
    EXPECT_EQ(Find(ck, p + "self_attn.v_proj.weight")->shape, Shape({KVD, D}));
    EXPECT_EQ(Find(ck, p + "self_attn.o_proj.weight")->shape, Shape({D, D}));
    EXPECT_EQ(Find(ck, p + "mlp.gate_proj.weight")->shape, Shape({F, D}));
    EXPECT_EQ(Find(ck, p + "mlp.down_proj.weight")->shape, Shape({D, F}));
    EXPECT_EQ(Find(ck, p + "mlp.up_proj.weight")->shape, Shape({F, D}));
  }
  // freqs_cis[pos][i] = exp(j * pos * 10000^(-2i/Dh)): a layout slip by any amount breaks this.
  const auto* re = Find(ck, "freq_cis_real");
  const auto* im = Find(ck, "freq_cis_imag");
  ASSERT_TRUE(re && im);
  EXPECT_EQ(re->shape, Shape({c.seq_len, Dh / 2}));
  for (int64_t pos = 0; pos < c.seq_len; ++pos) {
    for (int64_t i = 0; i < Dh / 2; ++i) {
      const double angle = static_cast<double>(pos) * std::pow(10000.0, -2.0 * static_cast<double>(i) / Dh);
      float r, s;
      std::memcpy(&r, re->data.data() + (pos * Dh / 2 + i) * 4, 4);
      std::memcpy(&s, im->data.data() + (pos * Dh / 2 + i) * 4, 4);
      ASSERT_NEAR(r, std::cos(angle), kTolRope) << pos << "," << i;
      ASSERT_NEAR(s, std::sin(angle), kTolRope) << pos << "," << i;
    }
  }
}

TEST(Llama2cCheckpoint, ReadsStories260K) {
  const auto ck = Llama2cCheckpoint::Open(test::SharedData("llama2c-stories260K/stories260K.bin"));
  const auto& c = ck.config();
  EXPECT_EQ((Header{c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len}),
            (Header{64, 172, 5, 8, 4, 512, 512}));
  EXPECT_TRUE(c.shared_classifier);
  CheckRealCheckpoint(ck, 264128);
  // w2 (down_proj) of layer 3 starts after embed 32768, rms_att 320, wq 20480, wk 10240,
  // wv 10240, wo 20480, rms_ffn 320, w1 55040 and 3 x 64 x 172 floats (README layout).
  const auto file = test::ReadFileBytes(test::SharedData("llama2c-stories260K/stories260K.bin"));
  const auto* w2 = Find(ck, "model.layers.3.mlp.down_proj.weight");
  const size_t offset = 28 + (32768 + 320 + 20480 + 10240 + 10240 + 20480 + 320 + 55040 + 3 * 64 * 172) * 4;
  ASSERT_EQ(w2->data.size(), 64u * 172 * 4);
  EXPECT_EQ(std::memcmp(w2->data.data(), file.data() + offset, w2->data.size()), 0);
}

TEST(Llama2cCheckpoint, ReadsAidreams260K) {
  const auto ck = Llama2cCheckpoint::Open(test::SharedData("llama2c-aidreams260K/aidreams260K.bin"));
  const auto& c = ck.config();
  EXPECT_EQ((Header{c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len}),
            (Header{64, 172, 4, 4, 4, 512, 128}));
  CheckRealCheckpoint(ck, 233024);
}

TEST(Llama2cCheckpoint, UnsharedClassifierSynthetic) {
  // D=8 F=16 L=2 H=2 KV=1 V=10 (negative: unshared) S=4 -> Dh=4, KV*Dh=4.
  const Header h = {8, 16, 2, 2, 1, -10, 4};
  const auto bytes = MakeCheckpoint(h);
  const auto ck = Llama2cCheckpoint::Parse(bytes, "synthetic.bin");
  EXPECT_FALSE(ck.config().shared_classifier);
  EXPECT_EQ(ck.config().vocab_size, 10);
  ASSERT_EQ(ck.tensors().size(), 1u + 9 * 2 + 1 + 2 + 1);
  const auto* head = Find(ck, "lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, Shape({10, 8}));
  EXPECT_EQ(FirstValue(*head), static_cast<float>(FloatCount(h) - 80));  // the last V*D floats
  EXPECT_EQ(head->data.data() + head->data.size(), bytes.data() + bytes.size());
  // Offsets in floats: embed 80, rms_att 2x8, wq 2x64, then wk layer 1 after wk layer 0 (4x8).
  EXPECT_EQ(FirstValue(*Find(ck, "model.layers.1.self_attn.k_proj.weight")), 80 + 16 + 128 + 32);
  EXPECT_EQ(FirstValue(*Find(ck, "model.layers.0.mlp.down_proj.weight")), 80 + 16 + 128 + 64 + 64 + 128 + 16 + 2 * 128);
  EXPECT_EQ(Find(ck, "freq_cis_imag")->shape, Shape({4, 2}));
}

void ExpectCheckpointError(const std::vector<uint8_t>& bytes, std::initializer_list<const char*> words) {
  try {
    Llama2cCheckpoint::Parse(bytes, "bad.bin");
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.bin"), std::string::npos) << msg;
    for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << "missing '" << w << "' in: " << msg;
  }
}

TEST(Llama2cCorrupt, Checkpoint) {
  const Header ok = {8, 16, 2, 2, 1, 10, 4};
  const int64_t want = 28 + FloatCount(ok) * 4;
  ExpectCheckpointError(MakeCheckpoint(ok, -4), {fmt::format("expected {} bytes", want).c_str(),
                                                 fmt::format("found {}", want - 4).c_str(), "truncated"});
  ExpectCheckpointError(MakeCheckpoint(ok, 3), {"3 trailing bytes"});
  const auto full = MakeCheckpoint(ok);
  for (long n : {0, 3, 4, 27}) ExpectCheckpointError({full.begin(), full.begin() + n}, {"expected"});
  ExpectCheckpointError(MakeCheckpoint({0, 16, 2, 2, 1, 10, 4}), {"dim", "found 0"});
  ExpectCheckpointError(MakeCheckpoint({8, 16, 2, 2, 1, 10, -4}), {"seq_len", "found -4"});
  ExpectCheckpointError(MakeCheckpoint({8, 16, 2, 3, 1, 10, 4}), {"dim divisible by n_heads", "dim=8 n_heads=3"});
  ExpectCheckpointError(MakeCheckpoint({8, 16, 2, 4, 3, 10, 4}), {"n_heads divisible by n_kv_heads"});
  ExpectCheckpointError(MakeCheckpoint({8, 16, 2, 2, 4, 10, 4}), {"n_heads divisible by n_kv_heads"});
  ExpectCheckpointError(MakeCheckpoint({6, 16, 2, 2, 1, 10, 4}), {"even head size", "3"});
}

TEST(Llama2cCorrupt, HugeFieldsAndVersionedFiles) {
  auto header_only = [](const Header& h) {
    std::vector<uint8_t> b(28);
    std::memcpy(b.data(), h.data(), 28);
    return b;
  };
  ExpectCheckpointError(header_only({1 << 30, 16, 2, 2, 1, 10, 4}), {"dim", "[1, 1048576]", "1073741824"});
  ExpectCheckpointError(header_only({8, 16, 2, 2, 1, INT32_MIN, 4}), {"vocab_size", "-2147483648"});
  // Every field at the 2^20 bound: the sizes multiply past 2^64 bytes.
  const int32_t m = 1 << 20;
  ExpectCheckpointError(header_only({m, m, m, m / 2, m / 2, -m, m}), {"overflow"});
  // Large but representable: the exact expected size is reported, no allocation is made.
  ExpectCheckpointError(header_only({4096, 11008, 32, 32, 32, 32000, 2048}), {"dim=4096", "found 28", "truncated"});
  std::vector<uint8_t> v2(256, 0);
  const uint32_t magic = 0x616b3432;
  const int32_t version = 2;
  std::memcpy(v2.data(), &magic, 4);
  std::memcpy(v2.data() + 4, &version, 4);
  ExpectCheckpointError(v2, {"llama2.c version-2 export is not supported; use the legacy format (version 0)"});
}

std::vector<uint8_t> MakeTokenizer(int32_t max_len, const std::vector<std::pair<float, std::string>>& tokens) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &max_len, 4);
  for (const auto& [score, piece] : tokens) {
    const int32_t len = static_cast<int32_t>(piece.size());
    b.resize(b.size() + 8);
    std::memcpy(b.data() + b.size() - 8, &score, 4);
    std::memcpy(b.data() + b.size() - 4, &len, 4);
    b.insert(b.end(), piece.begin(), piece.end());
  }
  return b;
}

TEST(Llama2cTokenizer, ReadsStoriesTok512) {
  // Reference: /work/shared/data/README.md. llama2.c's export stores BOS/EOS as "\n<s>\n" / "\n</s>\n".
  const auto tok = Llama2cTokenizer::Open(test::SharedData("llama2c-stories260K/tok512.bin"), 512);
  EXPECT_EQ(tok.max_token_length, 7);
  ASSERT_EQ(tok.pieces.size(), 512u);
  ASSERT_EQ(tok.scores.size(), 512u);
  EXPECT_EQ(tok.pieces[0], "<unk>");
  EXPECT_EQ(tok.pieces[1], "\n<s>\n");
  EXPECT_EQ(tok.pieces[2], "\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(tok.pieces[static_cast<size_t>(3 + b)], fmt::format("<0x{:02X}>", b));
    EXPECT_EQ(tok.scores[static_cast<size_t>(3 + b)], 0.0f);
  }
  for (int k = 0; k < 512 - 259; ++k) EXPECT_EQ(tok.scores[static_cast<size_t>(259 + k)], -static_cast<float>(k));
  EXPECT_EQ(tok.pieces[259], " t");
}

TEST(Llama2cTokenizer, ReadsAidreamsTok512) {
  const auto tok = Llama2cTokenizer::Open(test::SharedData("llama2c-aidreams260K/tok512.bin"), 512);
  EXPECT_EQ(tok.max_token_length, 10);
  ASSERT_EQ(tok.pieces.size(), 512u);
  size_t longest = 0;
  for (const auto& p : tok.pieces) longest = std::max(longest, p.size());
  EXPECT_EQ(longest, 10u);  // the real file uses its whole max_token_length
  EXPECT_EQ(tok.pieces[259], "in");
}

void ExpectTokenizerError(const std::vector<uint8_t>& bytes, int32_t vocab, std::initializer_list<const char*> words) {
  try {
    Llama2cTokenizer::Parse(bytes, "tok.bin", vocab);
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tok.bin"), std::string::npos) << msg;
    for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << "missing '" << w << "' in: " << msg;
  }
}

TEST(Llama2cCorrupt, Tokenizer) {
  const auto ok = MakeTokenizer(4, {{0.f, "ab"}, {-1.f, ""}, {-2.f, "abcd"}});
  EXPECT_EQ(Llama2cTokenizer::Parse(ok, "tok.bin", 3).pieces[2], "abcd");
  for (size_t n = 0; n < ok.size(); ++n)
    ExpectTokenizerError({ok.begin(), ok.begin() + static_cast<long>(n)}, 3, {"expected"});
  ExpectTokenizerError(ok, 2, {"12 trailing bytes", "after 2 tokens"});
  ExpectTokenizerError(MakeTokenizer(4, {{0.f, "abcde"}}), 1, {"token 0", "max_token_length=4", "found 5"});
  auto negative = MakeTokenizer(4, {{0.f, "ab"}});
  const int32_t minus3 = -3;
  std::memcpy(negative.data() + 8, &minus3, 4);
  ExpectTokenizerError(negative, 1, {"token 0", "found -3"});
  ExpectTokenizerError(MakeTokenizer(0, {}), 1, {"max_token_length", "found 0"});
  ExpectTokenizerError(MakeTokenizer(-1, {}), 1, {"max_token_length", "found -1"});
  ExpectTokenizerError(ok, 0, {"vocab_size", "found 0"});
  ExpectTokenizerError(ok, 1 << 20, {"at least 8388608 bytes", "truncated"});
  // The real file, cut short and padded.
  auto real = test::ReadFileBytes(test::SharedData("llama2c-stories260K/tok512.bin"));
  ExpectTokenizerError({real.begin(), real.end() - 1}, 512, {"token 511", "truncated"});
  ExpectTokenizerError({real.begin(), real.begin() + 3000}, 512, {"truncated"});
  real.push_back(0);
  ExpectTokenizerError(real, 512, {"1 trailing bytes"});
  ExpectTokenizerError(test::ReadFileBytes(test::SharedData("llama2c-stories260K/tok512.bin")), 513, {"token 512"});
}

}  // namespace
}  // namespace nibble::io
