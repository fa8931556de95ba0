// llama2.c legacy checkpoint and tokenizer readers (layout in llama2c.h;
// karpathy/llama2.c run.c memory_map_weights and build_tokenizer are the spec).
#include "io/llama2c.h"

#include <fmt/core.h>

#include <cstdlib>

#include "io/reader.h"
#include "nibble/error.h"

namespace nibble::io {
namespace {

// export.py version 1+ files start with this u32 ("ak42" read little-endian).
constexpr uint32_t kVersionedMagic = 0x616b3432;
constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);
// Bound on every header field (2^20): real models are far below it, and with it
// the largest product (layers x dim x hidden = 2^60 floats) fits in 64 bits.
constexpr int64_t kMaxField = int64_t{1} << 20;
// Bound on a tokenizer's max_token_length; real files use 7 to ~20.
constexpr int32_t kMaxTokenLength = 1 << 16;

uint64_t Mul(uint64_t a, uint64_t b, const std::string& source) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    throw FormatError(fmt::format("{}: expected a checkpoint size below 2^64 bytes, found an overflow", source));
  return r;
}

uint64_t Add(uint64_t a, uint64_t b, const std::string& source) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r))
    throw FormatError(fmt::format("{}: expected a checkpoint size below 2^64 bytes, found an overflow", source));
  return r;
}

Llama2cConfig ReadConfig(Reader& r) {
  const uint32_t magic = r.Read<uint32_t>("magic / dim");
  if (magic == kVersionedMagic) {
    const int32_t version = r.Read<int32_t>("version");
    r.Fail(fmt::format("llama2.c version-{} export is not supported; use the legacy format (version 0)", version));
  }
  r.Seek(0, "header");
  Llama2cConfig c;
  struct Field {
    const char* name;
    int32_t* value;
  };
  const Field fields[] = {{"dim", &c.dim},         {"hidden_dim", &c.hidden_dim}, {"n_layers", &c.n_layers},
                          {"n_heads", &c.n_heads}, {"n_kv_heads", &c.n_kv_heads}, {"vocab_size", &c.vocab_size},
                          {"seq_len", &c.seq_len}};
  for (const auto& f : fields) *f.value = r.Read<int32_t>(f.name);
  for (const auto& f : fields) {
    // vocab_size's sign only says whether the classifier is shared.
    const int64_t v = f.value == &c.vocab_size ? std::llabs(int64_t{*f.value}) : int64_t{*f.value};
    if (v <= 0 || v > kMaxField)
      r.Fail(fmt::format("header field {}: expected a value in [1, {}]{}, found {}", f.name, kMaxField,
                         f.value == &c.vocab_size ? " (in magnitude)" : "", *f.value));
  }
  c.shared_classifier = c.vocab_size > 0;
  c.vocab_size = static_cast<int32_t>(std::llabs(int64_t{c.vocab_size}));
  if (c.dim % c.n_heads != 0)
    r.Fail(fmt::format("expected dim divisible by n_heads, found dim={} n_heads={}", c.dim, c.n_heads));
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
    r.Fail(fmt::format("expected n_heads divisible by n_kv_heads, found n_heads={} n_kv_heads={}", c.n_heads,
                       c.n_kv_heads));
  if ((c.dim / c.n_heads) % 2 != 0)
    r.Fail(fmt::format("expected an even head size (RoPE rotates pairs), found dim/n_heads = {}", c.dim / c.n_heads));
  return c;
}

}  // namespace

Llama2cCheckpoint Llama2cCheckpoint::Open(const std::string& path) {
  auto file = MappedFile::Open(path);
  Llama2cCheckpoint ck = Parse(file->bytes(), path);
  ck.file_ = std::move(file);
  return ck;
}

Llama2cCheckpoint Llama2cCheckpoint::Parse(std::span<const uint8_t> bytes, const std::string& source) {
  Reader r(bytes, source);
  Llama2cCheckpoint ck;
  ck.source_ = source;
  ck.config_ = ReadConfig(r);
  const Llama2cConfig& c = ck.config_;
  const int64_t D = c.dim, F = c.hidden_dim, L = c.n_layers, V = c.vocab_size, S = c.seq_len;
  const int64_t Dh = D / c.n_heads, KVD = c.n_kv_heads * Dh;

  // The tensor list in file order; per-layer arrays are split into one tensor per layer.
  struct Block {
    std::string name;  // with {} for the layer index when per_layer
    Shape shape;
    bool per_layer;
  };
  std::vector<Block> blocks = {
      {"model.embed_tokens.weight", {V, D}, false},
      {"model.layers.{}.input_layernorm.weight", {D}, true},
      {"model.layers.{}.self_attn.q_proj.weight", {D, D}, true},
      {"model.layers.{}.self_attn.k_proj.weight", {KVD, D}, true},
      {"model.layers.{}.self_attn.v_proj.weight", {KVD, D}, true},
      {"model.layers.{}.self_attn.o_proj.weight", {D, D}, true},
      {"model.layers.{}.post_attention_layernorm.weight", {D}, true},
      {"model.layers.{}.mlp.gate_proj.weight", {F, D}, true},
      {"model.layers.{}.mlp.down_proj.weight", {D, F}, true},
      {"model.layers.{}.mlp.up_proj.weight", {F, D}, true},
      {"model.norm.weight", {D}, false},
      {"freq_cis_real", {S, Dh / 2}, false},
      {"freq_cis_imag", {S, Dh / 2}, false},
  };
  if (!c.shared_classifier) blocks.push_back({"lm_head.weight", {V, D}, false});

  // Every field is <= 2^20, so each product is < 2^60; the checked sums catch the rest.
  uint64_t floats = 0;
  for (const auto& b : blocks) {
    const uint64_t n = static_cast<uint64_t>(b.shape.NumElems());
    floats = Add(floats, b.per_layer ? Mul(n, static_cast<uint64_t>(L), source) : n, source);
  }
  const uint64_t want = Add(kHeaderBytes, Mul(floats, sizeof(float), source), source);
  if (bytes.size() < want)
    r.Fail(
        fmt::format("expected {} bytes for dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} "
                    "vocab_size={} seq_len={}, found {} (file truncated?)",
                    want, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                    c.shared_classifier ? c.vocab_size : -c.vocab_size, c.seq_len, bytes.size()));
  if (bytes.size() > want)
    r.Fail(fmt::format("expected {} bytes, found {} ({} trailing bytes after the weights)", want, bytes.size(),
                       bytes.size() - want));

  for (const auto& b : blocks) {
    const uint64_t n_bytes = static_cast<uint64_t>(b.shape.NumElems()) * sizeof(float);
    for (int64_t layer = 0; layer < (b.per_layer ? L : 1); ++layer) {
      Llama2cTensor t;
      t.name = b.per_layer ? fmt::format(fmt::runtime(b.name), layer) : b.name;
      t.shape = b.shape;
      t.data = r.ReadBytes(n_bytes, t.name);
      ck.tensors_.push_back(std::move(t));
    }
  }
  return ck;
}

Llama2cTokenizer Llama2cTokenizer::Open(const std::string& path, int32_t vocab_size) {
  const auto file = MappedFile::Open(path);
  return Parse(file->bytes(), path, vocab_size);
}

Llama2cTokenizer Llama2cTokenizer::Parse(std::span<const uint8_t> bytes, const std::string& source,
                                         int32_t vocab_size) {
  Reader r(bytes, source);
  if (vocab_size <= 0 || vocab_size > kMaxField)
    r.Fail(fmt::format("expected a vocab_size in [1, {}] from the checkpoint, found {}", kMaxField, vocab_size));
  Llama2cTokenizer tok;
  tok.max_token_length = r.Read<int32_t>("max_token_length");
  if (tok.max_token_length <= 0 || tok.max_token_length > kMaxTokenLength)
    r.Fail(fmt::format("expected max_token_length in [1, {}], found {}", kMaxTokenLength, tok.max_token_length));
  // Each record is at least 8 bytes (score + length): check before reserving.
  const uint64_t min_bytes = uint64_t{8} * static_cast<uint64_t>(vocab_size);
  if (min_bytes > r.remaining())
    r.Fail(fmt::format("expected at least {} bytes for {} tokens, found {} (file truncated?)", min_bytes, vocab_size,
                       r.remaining()));
  tok.pieces.reserve(static_cast<size_t>(vocab_size));
  tok.scores.reserve(static_cast<size_t>(vocab_size));
  for (int32_t i = 0; i < vocab_size; ++i) {
    const std::string what = fmt::format("token {}", i);
    const float score = r.Read<float>(what + " score");
    const int32_t len = r.Read<int32_t>(what + " length");
    if (len < 0 || len > tok.max_token_length)
      r.Fail(
          fmt::format("{}: expected a length in [0, max_token_length={}], found {}", what, tok.max_token_length, len));
    tok.pieces.emplace_back(r.ReadStringView(static_cast<uint64_t>(len), what + " bytes"));
    tok.scores.push_back(score);
  }
  if (r.remaining() != 0)
    r.Fail(fmt::format("expected the file to end after {} tokens at byte {}, found {} trailing bytes", vocab_size,
                       r.pos(), r.remaining()));
  return tok;
}

}  // namespace nibble::io
