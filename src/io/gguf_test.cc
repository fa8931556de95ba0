// GGUF reader/writer tests: real files from llama.cpp (stories260K, a vocab-only
// file), round trips through WriteGguf, and goldens made with the upstream gguf-py
// package (scripts/goldens/make_gguf_goldens.py). Corrupt files: gguf_corrupt_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "io/gguf.h"
#include "util/file_bytes.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::io {
namespace {

using test::Golden;
using test::ReadFileBytes;
using test::SharedData;
using test::TempDir;

// Integer and bit-pattern payloads must round-trip exactly; f32 metadata values are
// compared after the same float rounding the file stores.
constexpr double kTolExact = 0.0;  // reason: GGUF stores every value verbatim

GgufValue U(GgufType t, uint64_t v) { return {t, v}; }
GgufValue I(GgufType t, int64_t v) { return {t, v}; }
GgufValue F(GgufType t, double v) { return {t, v}; }
GgufValue B(bool v) { return {GgufType::kBool, v}; }
GgufValue S(std::string v) { return {GgufType::kString, std::move(v)}; }
GgufValue A(GgufType elem, std::vector<GgufValue> items) {
  return {GgufType::kArray, GgufArray{elem, std::move(items)}};
}

// Deep equality with a readable report of the first difference.
::testing::AssertionResult SameValue(const GgufValue& a, const GgufValue& b, const std::string& where) {
  if (a.type != b.type)
    return ::testing::AssertionFailure() << where << ": type " << GgufTypeName(a.type) << " vs "
                                         << GgufTypeName(b.type);
  if (a.value.index() != b.value.index()) return ::testing::AssertionFailure() << where << ": variant differs";
  if (const auto* x = std::get_if<GgufArray>(&a.value)) {
    const auto& y = std::get<GgufArray>(b.value);
    if (x->elem_type != y.elem_type || x->items.size() != y.items.size())
      return ::testing::AssertionFailure() << where << ": array element type or count differs";
    for (size_t i = 0; i < x->items.size(); ++i) {
      auto r = SameValue(x->items[i], y.items[i], where + "[" + std::to_string(i) + "]");
      if (!r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (const auto* x = std::get_if<double>(&a.value)) {
    const double y = std::get<double>(b.value);
    if (!(std::abs(*x - y) <= kTolExact))
      return ::testing::AssertionFailure() << where << ": " << *x << " vs " << y;
    return ::testing::AssertionSuccess();
  }
  const bool same = std::visit(
      [&](const auto& x) {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, GgufArray> || std::is_same_v<V, double>) {
          return false;  // handled above
        } else {
          return x == std::get<V>(b.value);
        }
      },
      a.value);
  if (!same) return ::testing::AssertionFailure() << where << ": value differs";
  return ::testing::AssertionSuccess();
}

std::vector<GgufWriteTensor> ToWriteTensors(const GgufFile& f) {
  std::vector<GgufWriteTensor> out;
  for (const GgufTensor& t : f.tensors()) out.push_back({t.name, t.dtype, t.shape, t.data});
  return out;
}

void ExpectSameFile(const GgufFile& a, const GgufFile& b) {
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    EXPECT_EQ(a.metadata()[i].key, b.metadata()[i].key);
    EXPECT_TRUE(SameValue(a.metadata()[i].value, b.metadata()[i].value, a.metadata()[i].key));
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const GgufTensor& x = a.tensors()[i];
    const GgufTensor& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.dtype, y.dtype) << x.name;
    EXPECT_EQ(x.shape, y.shape) << x.name;
    ASSERT_EQ(x.data.size(), y.data.size()) << x.name;
    EXPECT_EQ(std::memcmp(x.data.data(), y.data.data(), x.data.size()), 0) << x.name;
  }
}

uint64_t GetU(const GgufFile& f, std::string_view key) {
  const GgufKv* kv = f.FindKey(key);
  if (kv == nullptr) throw std::runtime_error("missing key " + std::string(key));
  return std::get<uint64_t>(kv->value.value);
}

const GgufArray& GetArray(const GgufFile& f, std::string_view key) {
  const GgufKv* kv = f.FindKey(key);
  if (kv == nullptr) throw std::runtime_error("missing key " + std::string(key));
  return std::get<GgufArray>(kv->value.value);
}

// --- Real files written by llama.cpp -------------------------------------------

TEST(GgufRead, Stories260K) {
  const GgufFile f = GgufFile::Open(SharedData("llama2c-stories260K/stories260K.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), kGgufDefaultAlignment);
  EXPECT_EQ(f.metadata().size(), 19u);
  ASSERT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(std::get<std::string>(f.FindKey("general.architecture")->value.value), "llama");
  const GgufArray& tokens = GetArray(f, "tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.elem_type, GgufType::kString);
  ASSERT_EQ(tokens.items.size(), 512u);
  EXPECT_EQ(std::get<std::string>(tokens.items[0].value), "<unk>");
  EXPECT_EQ(std::get<std::string>(tokens.items[3].value), "<0x00>");
  EXPECT_EQ(f.FindKey("llama.attention.layer_norm_rms_epsilon")->value.type, GgufType::kF32);

  for (const GgufTensor& t : f.tensors()) EXPECT_EQ(t.dtype, DType::kF32) << t.name;
  EXPECT_EQ(f.FindTensor("token_embd.weight")->shape, Shape({512, 64}));
  EXPECT_EQ(f.FindTensor("output.weight")->shape, Shape({512, 64}));
  EXPECT_EQ(f.FindTensor("output_norm.weight")->shape, Shape({64}));
  EXPECT_EQ(f.FindTensor("blk.0.attn_k.weight")->shape, Shape({32, 64}));
  EXPECT_EQ(f.FindTensor("blk.4.ffn_down.weight")->shape, Shape({64, 172}));
  EXPECT_EQ(f.FindTensor("blk.4.ffn_gate.weight")->shape, Shape({172, 64}));
  EXPECT_EQ(f.FindTensor("no.such.tensor"), nullptr);

  // Reference: the parameter count implied by the metadata hyper-parameters
  // (embeddings + untied output + final norm + per-layer attention, norms and SwiGLU).
  const uint64_t dim = GetU(f, "llama.embedding_length"), hidden = GetU(f, "llama.feed_forward_length");
  const uint64_t heads = GetU(f, "llama.attention.head_count"), kv_heads = GetU(f, "llama.attention.head_count_kv");
  const uint64_t layers = GetU(f, "llama.block_count"), vocab = tokens.items.size();
  const uint64_t kv_dim = dim / heads * kv_heads;
  const uint64_t per_layer = 2 * dim + 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * hidden;
  const uint64_t expected_params = 2 * vocab * dim + dim + layers * per_layer;
  uint64_t params = 0;
  for (const GgufTensor& t : f.tensors()) {
    params += static_cast<uint64_t>(t.shape.NumElems());
    EXPECT_EQ(t.data.size(), static_cast<size_t>(t.shape.NumElems()) * 4) << t.name;
    EXPECT_EQ((t.data.data() - f.tensors()[0].data.data()) % 32, 0) << t.name;
  }
  EXPECT_EQ(params, expected_params);
  EXPECT_EQ(params, 292800u);  // the "260K" name counts the tied-embedding llama2.c model

  // Reference: llama2.c's stories260K.bin holds the same token embedding table right
  // after its 7 x i32 header; llama.cpp's converter copies it verbatim.
  const std::vector<uint8_t> bin = ReadFileBytes(SharedData("llama2c-stories260K/stories260K.bin"));
  const GgufTensor* emb = f.FindTensor("token_embd.weight");
  ASSERT_GE(bin.size(), 28 + emb->data.size());
  EXPECT_EQ(std::memcmp(bin.data() + 28, emb->data.data(), emb->data.size()), 0);
}

TEST(GgufRead, VocabOnlyLlamaSpm) {
  const GgufFile f = GgufFile::Open(SharedData("tokenizer-llamacpp-vocab/ggml-vocab-llama-spm.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.metadata().size(), 22u);
  const GgufArray& tokens = GetArray(f, "tokenizer.ggml.tokens");
  const GgufArray& scores = GetArray(f, "tokenizer.ggml.scores");
  const GgufArray& types = GetArray(f, "tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.items.size(), 32000u);
  EXPECT_EQ(scores.items.size(), 32000u);
  EXPECT_EQ(types.items.size(), 32000u);
  EXPECT_EQ(tokens.elem_type, GgufType::kString);
  EXPECT_EQ(scores.elem_type, GgufType::kF32);
  EXPECT_EQ(types.elem_type, GgufType::kI32);
  // Reference values read with gguf-py's GGUFReader.
  EXPECT_EQ(std::get<std::string>(tokens.items[1].value), "<s>");
  EXPECT_EQ(std::get<std::string>(tokens.items[29871].value), "\xE2\x96\x81");  // U+2581, SentencePiece space
  EXPECT_EQ(std::get<std::string>(tokens.items[31999].value), "\xE7\xBB\x99");  // U+7ED9
  EXPECT_EQ(std::get<int64_t>(types.items[0].value), 2);
  EXPECT_EQ(std::get<int64_t>(types.items[3].value), 6);
  EXPECT_EQ(f.FindKey("tokenizer.ggml.add_bos_token")->value.type, GgufType::kBool);
}

TEST(GgufRead, VocabOnlyGpt2) {
  const GgufFile f = GgufFile::Open(SharedData("tokenizer-llamacpp-vocab/ggml-vocab-gpt-2.gguf"));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_GT(GetArray(f, "tokenizer.ggml.tokens").items.size(), 50000u);
}

// --- Writer round trips ----------------------------------------------------------

// Every value type, nested arrays and five tensor dtypes at alignment 64. The same
// values are checked on the Python side by scripts/goldens/make_gguf_goldens.py.
struct RoundTripContent {
  std::vector<GgufKv> kv;
  std::vector<std::vector<uint8_t>> data;
  std::vector<GgufWriteTensor> tensors;
};

RoundTripContent MakeRoundTripContent() {
  using T = GgufType;
  RoundTripContent c;
  c.kv = {
      {"general.architecture", S("llama")},
      {"general.alignment", U(T::kU32, 64)},
      {"nb.u8", U(T::kU8, 7)},
      {"nb.i8", I(T::kI8, -7)},
      {"nb.u16", U(T::kU16, 65535)},
      {"nb.i16", I(T::kI16, -32768)},
      {"nb.u32", U(T::kU32, 4294967295u)},
      {"nb.i32", I(T::kI32, -2147483648LL)},
      {"nb.f32", F(T::kF32, 0.25)},
      {"nb.bool", B(true)},
      {"nb.string", S("nibble \xE2\x9C\x93 \xC3\xBCn\xC3\xAF" "c\xC3\xB6" "d\xC3\xA9")},
      {"nb.u64", U(T::kU64, UINT64_MAX)},
      {"nb.i64", I(T::kI64, INT64_MIN)},
      {"nb.f64", F(T::kF64, -1e-300)},
      {"nb.arr_u8", A(T::kU8, {U(T::kU8, 1), U(T::kU8, 2), U(T::kU8, 3)})},
      {"nb.arr_str", A(T::kString, {S("x"), S(""), S("yz")})},
      {"nb.arr_f64", A(T::kF64, {F(T::kF64, 1.5), F(T::kF64, -2.5)})},
      {"nb.nested", A(T::kArray, {A(T::kI16, {I(T::kI16, 1), I(T::kI16, 2), I(T::kI16, 3)}), A(T::kI16, {}),
                                  A(T::kI16, {I(T::kI16, -4)})})},
      {"nb.deep", A(T::kArray, {A(T::kArray, {A(T::kBool, {B(true)})})})},
  };
  // tok.f32: (3, 4) f32 = i * 0.5 - 2.
  std::vector<float> f32(12);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) * 0.5f - 2.0f;
  c.data.emplace_back(reinterpret_cast<const uint8_t*>(f32.data()),
                      reinterpret_cast<const uint8_t*>(f32.data() + f32.size()));
  // tok.f16: (2, 3) fp16 bits of 0, 1, -2, 0.5, 1024, -0.25.
  const uint16_t f16[] = {0x0000, 0x3C00, 0xC000, 0x3800, 0x6400, 0xB400};
  c.data.emplace_back(reinterpret_cast<const uint8_t*>(f16), reinterpret_cast<const uint8_t*>(f16) + sizeof(f16));
  // tok.bf16: (4) bf16 bits of 1, -2, 0.5, 0.
  const uint16_t bf16[] = {0x3F80, 0xC000, 0x3F00, 0x0000};
  c.data.emplace_back(reinterpret_cast<const uint8_t*>(bf16),
                      reinterpret_cast<const uint8_t*>(bf16) + sizeof(bf16));
  // tok.q8_0: (2, 32) = two 34-byte blocks; tok.q4_0: (1, 64) = two 18-byte blocks.
  std::vector<uint8_t> q8(68), q4(36);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 7);
  for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<uint8_t>(i * 13 + 5);
  c.data.push_back(q8);
  c.data.push_back(q4);
  c.tensors = {{"tok.f32", DType::kF32, Shape({3, 4}), c.data[0]},
               {"tok.f16", DType::kF16, Shape({2, 3}), c.data[1]},
               {"tok.bf16", DType::kBF16, Shape({4}), c.data[2]},
               {"tok.q8_0", DType::kQ8_0, Shape({2, 32}), c.data[3]},
               {"tok.q4_0", DType::kQ4_0, Shape({1, 64}), c.data[4]}};
  return c;
}

TEST(GgufWrite, RoundTripEveryTypeAlignment64) {
  const RoundTripContent c = MakeRoundTripContent();
  TempDir dir;
  const std::string path = dir.File("rt.gguf");
  WriteGguf(path, c.kv, c.tensors, nibble::io::Existing::kReplace);
  EXPECT_EQ(test::CountTemporaries(dir.path()), 0);
  const GgufFile f = GgufFile::Open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.metadata().size(), c.kv.size());
  for (size_t i = 0; i < c.kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, c.kv[i].key);
    EXPECT_TRUE(SameValue(f.metadata()[i].value, c.kv[i].value, c.kv[i].key));
  }
  ASSERT_EQ(f.tensors().size(), c.tensors.size());
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    EXPECT_EQ(t.name, c.tensors[i].name);
    EXPECT_EQ(t.dtype, c.tensors[i].dtype);
    EXPECT_EQ(t.shape, c.tensors[i].shape) << t.name;
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    ASSERT_EQ(t.data.size(), c.tensors[i].data.size()) << t.name;
    EXPECT_EQ(std::memcmp(t.data.data(), c.tensors[i].data.data(), t.data.size()), 0) << t.name;
  }
  // The file is exactly header + padding + each tensor padded to 64 bytes.
  EXPECT_EQ(std::filesystem::file_size(path), f.data_offset() + 64 + 64 + 64 + 128 + 64);
}

TEST(GgufWrite, RewriteStories260KIsByteIdentical) {
  const std::string src = SharedData("llama2c-stories260K/stories260K.gguf");
  const GgufFile a = GgufFile::Open(src);
  TempDir dir;
  const std::string path = dir.File("rewrite.gguf");
  WriteGguf(path, a.metadata(), ToWriteTensors(a), nibble::io::Existing::kReplace);
  ExpectSameFile(a, GgufFile::Open(path));
  // llama.cpp wrote the original with the same layout rules (kv order kept, header and
  // every tensor padded to 32), so nibble's output matches it byte for byte.
  EXPECT_TRUE(ReadFileBytes(path) == ReadFileBytes(src));
}

TEST(GgufWrite, RewriteVocabParsesTheSame) {
  const GgufFile a = GgufFile::Open(SharedData("tokenizer-llamacpp-vocab/ggml-vocab-llama-spm.gguf"));
  TempDir dir;
  const std::string path = dir.File("vocab.gguf");
  WriteGguf(path, a.metadata(), {}, nibble::io::Existing::kReplace);
  ExpectSameFile(a, GgufFile::Open(path));
}

TEST(GgufWrite, RejectsWhatGgufCannotHold) {
  TempDir dir;
  const std::string path = dir.File("bad.gguf");
  const std::vector<uint8_t> four(4);
  auto write = [&](DType dt, Shape shape, std::span<const uint8_t> data) {
    WriteGguf(path, {}, {{"w", dt, shape, data}}, nibble::io::Existing::kReplace);
  };
  EXPECT_THROW(write(DType::kTF32, Shape({1}), four), FormatError);
  EXPECT_THROW(write(DType::kF8E4M3FN, Shape({4}), four), FormatError);
  EXPECT_THROW(write(DType::kBool, Shape({4}), four), FormatError);
  EXPECT_THROW(write(DType::kU8, Shape({4}), four), FormatError);
  EXPECT_THROW(write(DType::kF32, Shape({2}), four), ShapeError);  // 8 bytes needed
  EXPECT_THROW(write(DType::kF16, Shape({1, 1, 1, 1, 2}), four), ShapeError);  // rank 5
  EXPECT_THROW(write(DType::kQ4_0, Shape({32, 1}), four), ShapeError);  // ne[0] = 1
  try {
    write(DType::kF16, Shape({3}), four);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("'w'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("6 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WriteGguf(path, {{"general.alignment", U(GgufType::kU32, 48)}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {{"general.alignment", U(GgufType::kU64, 64)}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {{"k", U(GgufType::kU8, 256)}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {{"k", I(GgufType::kI8, -129)}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {{"k", A(GgufType::kU8, {I(GgufType::kI8, 1)})}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {{"k", S("\xC0\xAF")}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {{"k", B(true)}, {"k", B(false)}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_THROW(WriteGguf(path, {}, {{"w", DType::kF16, Shape({2}), four}, {"w", DType::kF16, Shape({2}), four}}, nibble::io::Existing::kReplace),
               FormatError);
  GgufValue deep = B(true);
  for (int i = 0; i <= kGgufMaxArrayDepth; ++i) deep = A(deep.type, {deep});
  EXPECT_THROW(WriteGguf(path, {{"k", deep}}, {}, nibble::io::Existing::kReplace), FormatError);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(test::CountTemporaries(dir.path()), 0);
}

// --- Goldens against gguf-py -----------------------------------------------------

TEST(GgufGolden, ReadsGgufPyFile) {
  using T = GgufType;
  const std::string path = Golden("gguf/gguf_py_small.gguf");
  const GgufFile f = GgufFile::Open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  // Expected values: write_gguf_py_small() in scripts/goldens/make_gguf_goldens.py.
  const std::vector<GgufKv> expected = {
      {"general.architecture", S("llama")},
      {"general.alignment", U(T::kU32, 64)},
      {"test.u8", U(T::kU8, 200)},
      {"test.i8", I(T::kI8, -100)},
      {"test.u16", U(T::kU16, 60000)},
      {"test.i16", I(T::kI16, -30000)},
      {"test.u32", U(T::kU32, 4000000000u)},
      {"test.i32", I(T::kI32, -2000000000)},
      {"test.f32", F(T::kF32, static_cast<double>(0.1f))},
      {"test.bool", B(true)},
      {"test.string", S("h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93")},
      {"test.u64", U(T::kU64, (uint64_t{1} << 63) + 5)},
      {"test.i64", I(T::kI64, -(int64_t{1} << 62) - 7)},
      {"test.f64", F(T::kF64, 3.141592653589793)},
      {"test.arr_i32", A(T::kI32, {I(T::kI32, 1), I(T::kI32, -2), I(T::kI32, 3)})},
      {"test.arr_str", A(T::kString, {S("a"), S("bc"), S("\xC3\x9F")})},
      {"test.arr_f32", A(T::kF32, {F(T::kF32, 0.5), F(T::kF32, -1.25)})},
      {"test.arr_bool", A(T::kBool, {B(true), B(false)})},
      {"test.nested", A(T::kArray, {A(T::kI32, {I(T::kI32, 1), I(T::kI32, 2)}), A(T::kI32, {I(T::kI32, 3)})})},
  };
  ASSERT_EQ(f.metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, expected[i].key);
    EXPECT_TRUE(SameValue(f.metadata()[i].value, expected[i].value, expected[i].key));
  }
  ASSERT_EQ(f.tensors().size(), 5u);
  auto expect_tensor = [&](const char* name, DType dt, Shape shape, const std::vector<uint8_t>& bytes) {
    const GgufTensor* t = f.FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, dt) << name;
    EXPECT_EQ(t->shape, shape) << name;
    EXPECT_EQ(t->offset % 64, 0u) << name;
    EXPECT_TRUE(std::vector<uint8_t>(t->data.begin(), t->data.end()) == bytes) << name;
  };
  auto bytes_of = [](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(v[0]));
  };
  std::vector<float> f32(6);
  for (size_t i = 0; i < 6; ++i) f32[i] = static_cast<float>(i) * 0.5f - 1.0f;
  expect_tensor("t.f32", DType::kF32, Shape({2, 3}), bytes_of(f32));
  expect_tensor("t.f16", DType::kF16, Shape({4}), bytes_of(std::vector<uint16_t>{0x3C00, 0xC000, 0x3800, 0x7BFF}));
  expect_tensor("t.bf16", DType::kBF16, Shape({2, 2}),
                bytes_of(std::vector<uint16_t>{0x3F80, 0xC000, 0x3F00, 0x0000}));
  std::vector<uint8_t> q8(68);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i);
  expect_tensor("t.q8_0", DType::kQ8_0, Shape({2, 32}), q8);
  expect_tensor("t.i8", DType::kI8, Shape({5}), bytes_of(std::vector<int8_t>{-128, -1, 0, 1, 127}));
}

TEST(GgufGolden, RewriteOfGgufPyFileIsByteIdentical) {
  const std::string path = Golden("gguf/gguf_py_small.gguf");
  const GgufFile f = GgufFile::Open(path);
  TempDir dir;
  const std::string out = dir.File("again.gguf");
  WriteGguf(out, f.metadata(), ToWriteTensors(f), nibble::io::Existing::kReplace);
  EXPECT_TRUE(ReadFileBytes(out) == ReadFileBytes(path));
}

// Writes nibble's golden for the Python side to check; with NIBBLE_REGEN_GOLDENS=1 it
// replaces tests/golden/gguf/nibble_written.gguf, otherwise it checks the committed
// copy is still what the writer produces.
TEST(GgufGolden, NibbleWrittenFile) {
  const RoundTripContent c = MakeRoundTripContent();
  TempDir dir;
  const std::string fresh = dir.File("nibble_written.gguf");
  WriteGguf(fresh, c.kv, c.tensors, nibble::io::Existing::kReplace);
  const std::string golden = Golden("gguf/nibble_written.gguf");
  const char* regen = std::getenv("NIBBLE_REGEN_GOLDENS");
  if (regen != nullptr && std::string(regen) == "1") WriteGguf(golden, c.kv, c.tensors, nibble::io::Existing::kReplace);
  EXPECT_TRUE(ReadFileBytes(fresh) == ReadFileBytes(golden));
}

}  // namespace
}  // namespace nibble::io
