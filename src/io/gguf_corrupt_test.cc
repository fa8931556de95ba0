// The GGUF corrupt-file catalogue: a valid small file is built in memory from a
// FileSpec, one field is broken, and GgufFile::Parse must throw FormatError whose
// message names the file, the key or tensor, and what was wrong. Never a crash.
#include <gtest/gtest.h>

#include <optional>

#include "io/gguf.h"
#include "util/temp_dir.h"

namespace nibble::io {
namespace {

constexpr const char* kSource = "corrupt.gguf";
constexpr uint64_t kHuge = uint64_t{1} << 63;  // 2^63: a count no file can back

// Little-endian byte builder.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& Put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& Str(std::string_view s, std::optional<uint64_t> len = std::nullopt) {
    Put<uint64_t>(len.value_or(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Raw(const std::vector<uint8_t>& r) {
    b.insert(b.end(), r.begin(), r.end());
    return *this;
  }
};

struct KvSpec {
  std::string key;
  uint32_t type;
  std::vector<uint8_t> payload;  // encoded value
  std::optional<uint64_t> key_len;  // overrides the key's length field
};
struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order, ne[0] first
  uint32_t ggml_type;
  uint64_t offset;
  std::optional<uint32_t> n_dims;  // overrides ne.size()
};
struct FileSpec {
  uint32_t magic = kGgufMagic;
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // override the real counts
  std::vector<KvSpec> kv;
  std::vector<TensorSpec> tensors;
  uint64_t pad_to = 32;    // header padding
  uint64_t data_bytes = 0; // data section length (no trailing padding)
};

std::vector<uint8_t> U32(uint32_t v) { return Bytes().Put(v).b; }
std::vector<uint8_t> F32(float v) { return Bytes().Put(v).b; }
std::vector<uint8_t> Str(std::string_view s, std::optional<uint64_t> len = std::nullopt) {
  return Bytes().Str(s, len).b;
}
// u32 elem_type | u64 count | items.
std::vector<uint8_t> Arr(GgufType elem, uint64_t count, const std::vector<uint8_t>& items) {
  return Bytes().Put(static_cast<uint32_t>(elem)).Put(count).Raw(items).b;
}

std::vector<uint8_t> Encode(const FileSpec& s) {
  Bytes out;
  out.Put(s.magic).Put(s.version);
  out.Put<uint64_t>(s.n_tensors.value_or(s.tensors.size())).Put<uint64_t>(s.n_kv.value_or(s.kv.size()));
  for (const KvSpec& kv : s.kv) out.Str(kv.key, kv.key_len).Put(kv.type).Raw(kv.payload);
  for (const TensorSpec& t : s.tensors) {
    out.Str(t.name).Put<uint32_t>(t.n_dims.value_or(static_cast<uint32_t>(t.ne.size())));
    for (uint64_t d : t.ne) out.Put(d);
    out.Put(t.ggml_type).Put(t.offset);
  }
  while (out.b.size() % s.pad_to != 0) out.b.push_back(0);
  for (uint64_t i = 0; i < s.data_bytes; ++i) out.b.push_back(static_cast<uint8_t>(i));
  return out.b;
}

constexpr uint32_t kArray = static_cast<uint32_t>(GgufType::kArray);

// A valid file: five kv (string, u32 alignment, i32 array, nested u8 arrays, f32)
// and two tensors (f32 (2, 4) at 0 and one Q8_0 block at 32), ending right after the
// last tensor so that every proper prefix is truncated.
FileSpec ValidSpec() {
  FileSpec s;
  s.kv = {
      {"general.architecture", static_cast<uint32_t>(GgufType::kString), Str("llama"), {}},
      {"general.alignment", static_cast<uint32_t>(GgufType::kU32), U32(32), {}},
      {"test.arr", kArray, Arr(GgufType::kI32, 3, Bytes().Put<int32_t>(1).Put<int32_t>(2).Put<int32_t>(3).b), {}},
      {"test.nested", kArray,
       Arr(GgufType::kArray, 2,
           Bytes().Raw(Arr(GgufType::kU8, 2, {1, 2})).Raw(Arr(GgufType::kU8, 1, {3})).b),
       {}},
      {"test.f32", static_cast<uint32_t>(GgufType::kF32), F32(1.5f), {}},
  };
  s.tensors = {{"blk.0.attn_q.weight", {4, 2}, 0, 0, {}}, {"blk.0.ffn_down.weight", {32, 1}, 8, 32, {}}};
  s.data_bytes = 32 + 34;
  return s;
}

// Parse must throw FormatError starting with the source name and containing every word.
void ExpectFormatError(const FileSpec& spec, std::initializer_list<std::string_view> words) {
  const std::vector<uint8_t> bytes = Encode(spec);
  try {
    GgufFile::Parse(bytes, kSource);
    ADD_FAILURE() << "Parse accepted the corrupt file";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(std::string(kSource) + ": ", 0), 0u) << msg;
    for (std::string_view w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

TEST(GgufCorrupt, ValidSpecParses) {
  const std::vector<uint8_t> bytes = Encode(ValidSpec());
  const GgufFile f = GgufFile::Parse(bytes, kSource);
  EXPECT_EQ(f.metadata().size(), 5u);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[1].dtype, DType::kQ8_0);
  EXPECT_EQ(f.tensors()[1].data.size(), 34u);
  EXPECT_EQ(f.data_offset() + 66, bytes.size());
}

TEST(GgufCorrupt, EveryTruncationThrows) {
  const std::vector<uint8_t> bytes = Encode(ValidSpec());
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::span<const uint8_t> prefix(bytes.data(), n);
    EXPECT_THROW(GgufFile::Parse(prefix, kSource), FormatError) << "prefix of " << n << " bytes";
  }
}

TEST(GgufCorrupt, Header) {
  FileSpec s = ValidSpec();
  s.magic = 0x46554746;  // "FGUF"
  ExpectFormatError(s, {"bad magic", "0x46554746"});
  s = ValidSpec();
  s.version = 1;
  ExpectFormatError(s, {"version 1", "not supported"});
  s.version = 99;
  ExpectFormatError(s, {"version 99", "expected 2 or 3"});
  s.version = 0x03000000;  // version 3 written big-endian
  ExpectFormatError(s, {"big-endian", "0x03000000"});
  s = ValidSpec();
  s.version = 2;  // v2 has the v3 layout
  EXPECT_NO_THROW(GgufFile::Parse(Encode(s), kSource));
}

TEST(GgufCorrupt, ImpossibleCounts) {
  FileSpec s = ValidSpec();
  s.n_tensors = kHuge;
  ExpectFormatError(s, {"tensor count 9223372036854775808", "remain"});
  s = ValidSpec();
  s.n_kv = kHuge;
  ExpectFormatError(s, {"kv count 9223372036854775808", "remain"});
  s = ValidSpec();
  s.n_kv = 6;  // one kv more than the file holds: the tensor infos are read as a kv
  ExpectFormatError(s, {});
}

TEST(GgufCorrupt, Strings) {
  FileSpec s = ValidSpec();
  s.kv[0].key_len = 1000;  // key length past EOF
  ExpectFormatError(s, {"key #0", "length 1000"});
  s = ValidSpec();
  s.kv[0].payload = Str("llama", kHuge);
  ExpectFormatError(s, {"key 'general.architecture'", "string value", "length 9223372036854775808"});
  s = ValidSpec();
  s.kv[2].key = "test.\xFF";
  ExpectFormatError(s, {"key #2", "UTF-8"});
  s = ValidSpec();
  s.kv[0].payload = Str("ll\xC0\xAFma");  // overlong '/'
  ExpectFormatError(s, {"key 'general.architecture'", "string value", "UTF-8"});
  s = ValidSpec();
  s.tensors[1].name = "blk.\xED\xA0\x80";  // a UTF-16 surrogate
  ExpectFormatError(s, {"tensor #1", "UTF-8"});
  s = ValidSpec();
  s.kv[1].key = "";
  ExpectFormatError(s, {"key #1", "empty"});
}

TEST(GgufCorrupt, ValueTypes) {
  FileSpec s = ValidSpec();
  s.kv[4].type = 13;
  ExpectFormatError(s, {"key 'test.f32'", "unknown value type 13"});
  s = ValidSpec();
  s.kv[2].payload = Arr(static_cast<GgufType>(99), 3, U32(0));
  ExpectFormatError(s, {"key 'test.arr'", "unknown array element type 99"});
  s = ValidSpec();
  s.kv[4] = {"test.bool", static_cast<uint32_t>(GgufType::kBool), {2}, {}};
  ExpectFormatError(s, {"key 'test.bool'", "bool", "found 2"});
}

TEST(GgufCorrupt, Arrays) {
  FileSpec s = ValidSpec();
  s.kv[2].payload = Arr(GgufType::kI32, kHuge, U32(0));
  ExpectFormatError(s, {"key 'test.arr'", "array count 9223372036854775808"});
  s = ValidSpec();
  // An inner array whose count runs past the file: the path names the element.
  s.kv[3].payload = Arr(GgufType::kArray, 2, Bytes().Raw(Arr(GgufType::kU8, 2, {1, 2})).Raw(Arr(GgufType::kU64, 500, {})).b);
  ExpectFormatError(s, {"key 'test.nested'[1]", "array count 500"});

  // kGgufMaxArrayDepth levels parse; one more is rejected.
  auto nest = [](int levels) {
    std::vector<uint8_t> v = Arr(GgufType::kU8, 1, {7});
    for (int i = 1; i < levels; ++i) v = Arr(GgufType::kArray, 1, v);
    return v;
  };
  s = ValidSpec();
  s.kv[3].payload = nest(kGgufMaxArrayDepth);
  EXPECT_NO_THROW(GgufFile::Parse(Encode(s), kSource));
  s.kv[3].payload = nest(kGgufMaxArrayDepth + 1);
  ExpectFormatError(s, {"key 'test.nested'", "nest 9 deep", "limit of 8"});
}

TEST(GgufCorrupt, Alignment) {
  FileSpec s = ValidSpec();
  s.kv[1].payload = U32(48);
  ExpectFormatError(s, {"key 'general.alignment'", "48", "power of two"});
  s.kv[1].payload = U32(0);
  ExpectFormatError(s, {"key 'general.alignment'", "alignment 0"});
  s = ValidSpec();
  s.kv[1].type = static_cast<uint32_t>(GgufType::kU64);
  s.kv[1].payload = Bytes().Put<uint64_t>(32).b;
  ExpectFormatError(s, {"key 'general.alignment'", "expected type u32, found u64"});
  s.kv[1].type = static_cast<uint32_t>(GgufType::kString);
  s.kv[1].payload = Str("32");
  ExpectFormatError(s, {"key 'general.alignment'", "found string"});
}

TEST(GgufCorrupt, Dims) {
  FileSpec s = ValidSpec();
  s.tensors[0].n_dims = 0;
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "n_dims is 0", "1 to 4"});
  s.tensors[0].n_dims = 5;
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "n_dims is 5"});
  s = ValidSpec();
  s.tensors[0].ne = {4, ~uint64_t{0}};
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "ne[1]", "negative", "-1"});
  s.tensors[0].ne = {uint64_t{1} << 32, uint64_t{1} << 32};
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "overflows", "4294967296"});
}

TEST(GgufCorrupt, GgmlTypes) {
  FileSpec s = ValidSpec();
  s.tensors[0].ggml_type = 15;  // Q8_K: a ggml type nibble does not read
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "ggml type 15"});
  s.tensors[0].ggml_type = 9999;
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "ggml type 9999"});
  s = ValidSpec();
  s.tensors[1].ne = {16, 2};  // Q8_0 blocks hold 32
  ExpectFormatError(s, {"tensor 'blk.0.ffn_down.weight'", "ne[0] = 16", "block size 32"});
}

TEST(GgufCorrupt, Offsets) {
  FileSpec s = ValidSpec();
  s.tensors[1].offset = 40;
  const std::vector<uint8_t> bytes = Encode(s);
  try {
    GgufFile::Parse(bytes, kSource);
    ADD_FAILURE() << "accepted an unaligned offset";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "corrupt.gguf: tensor 'blk.0.ffn_down.weight': offset 40 is not a multiple of the "
                           "alignment 32");
  }
  s = ValidSpec();
  s.tensors[1].offset = 64;  // 34 bytes from 64 run past the 66-byte data section
  ExpectFormatError(s, {"tensor 'blk.0.ffn_down.weight'", "offset 64", "past the end"});
  s.tensors[1].offset = kHuge;  // offset + size would wrap in 64 bits
  ExpectFormatError(s, {"tensor 'blk.0.ffn_down.weight'", "past the end"});
  s = ValidSpec();
  s.tensors[1].offset = 0;
  ExpectFormatError(s, {"overlaps", "blk.0.attn_q.weight", "blk.0.ffn_down.weight"});
}

TEST(GgufCorrupt, Duplicates) {
  FileSpec s = ValidSpec();
  s.tensors[1].name = s.tensors[0].name;
  ExpectFormatError(s, {"tensor 'blk.0.attn_q.weight'", "duplicate tensor name"});
  s = ValidSpec();
  s.kv[2].key = "test.f32";
  ExpectFormatError(s, {"key 'test.f32'", "duplicate key"});
}

TEST(GgufCorrupt, OpenMissingFileOrDirectory) {
  test::TempDir dir;
  const std::string missing = dir.File("no_such.gguf");
  try {
    GgufFile::Open(missing);
    ADD_FAILURE() << "opened a missing file";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  try {
    GgufFile::Open(dir.path().string());
    ADD_FAILURE() << "opened a directory";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path().string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nibble::io
