// Corrupt-file catalogue for safetensors: every broken file must give a FormatError
// (or IoError) whose message names the file and says what was expected.
// Reference: the rules of huggingface/safetensors (README "Format", src/tensor.rs validate()).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>

#include "io/safetensors.h"
#include "nibble/error.h"
#include "util/file_bytes.h"
#include "util/temp_dir.h"

namespace nibble::io {
namespace {

constexpr const char* kSource = "bad.safetensors";

// u64 header length | header | data.
std::vector<uint8_t> MakeFile(const std::string& header, size_t data_bytes, uint64_t length_override = 0) {
  const uint64_t n = length_override ? length_override : header.size();
  std::vector<uint8_t> b(8 + header.size() + data_bytes);
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) b[8 + header.size() + i] = static_cast<uint8_t>(i);
  return b;
}

// Two F32 tensors tiling 24 bytes: a [2,2] at [0,16], b [2] at [16,24].
const std::string kValidHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";

// Parses `bytes`, expecting a FormatError whose message names the file and holds every word.
void ExpectFormatError(const std::vector<uint8_t>& bytes, std::initializer_list<const char*> words) {
  try {
    SafetensorsFile::Parse(bytes, kSource);
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kSource), std::string::npos) << msg;
    for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << "missing '" << w << "' in: " << msg;
  }
}

std::string OneTensor(const std::string& entry) { return R"({"t":)" + entry + "}"; }

TEST(SafetensorsCorrupt, ValidBaseParses) {
  const auto f = SafetensorsFile::Parse(MakeFile(kValidHeader, 24), kSource);
  EXPECT_EQ(f.tensors().size(), 2u);
}

TEST(SafetensorsCorrupt, EveryTruncationFails) {
  const auto full = MakeFile(kValidHeader, 24);
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    ExpectFormatError({full.begin(), full.begin() + static_cast<long>(n)}, {"expected"});
  }
}

TEST(SafetensorsCorrupt, HeaderLength) {
  ExpectFormatError(MakeFile(kValidHeader, 24, 1000), {"1000", "past the end"});
  ExpectFormatError(MakeFile(kValidHeader, 24, 100'000'001), {"100 MB", "100000001"});
  ExpectFormatError(MakeFile(kValidHeader, 24, ~uint64_t{0}), {"100 MB"});
  ExpectFormatError(MakeFile("", 0), {"'{'", "empty header"});
}

TEST(SafetensorsCorrupt, HeaderNotJsonObject) {
  ExpectFormatError(MakeFile("{not json}", 0), {"not valid JSON"});
  ExpectFormatError(MakeFile(R"({"t":{"dtype":"F32")", 0), {"not valid JSON"});
  ExpectFormatError(MakeFile("[1,2]", 0), {"'{'", "0x5b"});
  ExpectFormatError(MakeFile(" {}", 0), {"'{'", "0x20"});
  ExpectFormatError(MakeFile(std::string("{}\0", 3), 0), {"header", "NUL byte at offset 2"});
}

TEST(SafetensorsCorrupt, InvalidUtf8) {
  ExpectFormatError(MakeFile("{\"__metadata__\":{\"k\":\"\xff\"}}", 0), {"UTF-8"});
  ExpectFormatError(MakeFile("{\"\xed\xa0\x80\":1}", 0), {"UTF-8"});  // a surrogate
}

TEST(SafetensorsCorrupt, MissingFields) {
  ExpectFormatError(MakeFile(OneTensor(R"({"shape":[1],"data_offsets":[0,4]})"), 4), {"tensor 't'", "'dtype'"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","data_offsets":[0,4]})"), 4), {"tensor 't'", "'shape'"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[1]})"), 4), {"tensor 't'", "'data_offsets'"});
  ExpectFormatError(MakeFile(OneTensor("[1]"), 4), {"tensor 't'", "expected an object", "array"});
}

TEST(SafetensorsCorrupt, BadDtypeAndShape) {
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F4","shape":[1],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "unknown dtype 'F4'", "BF16"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "dtype to be a string"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[-1,2],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "shape[0]", "non-negative integer", "-1"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "shape[0]", "1.5"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "array of extents"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "rank at most 8", "rank 9"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[1099511627776,1099511627776],)"
                                       R"("data_offsets":[0,4]})"),
                             4),
                    {"tensor 't'", "2^62", "overflow"});
  // 2^62 elements x 4 bytes overflows a u64 byte count.
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "bytes for shape"});
}

TEST(SafetensorsCorrupt, ShapeTimesDtypeMismatch) {
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})"), 20),
                    {"tensor 't'", "expected 6 x 4 bytes", "[2, 3]", "F32", "found data_offsets [0, 20] (20 bytes)"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"F16","shape":[],"data_offsets":[0,4]})"), 4),
                    {"tensor 't'", "expected 1 x 2 bytes"});
}

TEST(SafetensorsCorrupt, BadOffsets) {
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,1000]})"), 4),
                    {"tensor 't'", "4-byte data section", "[0, 1000]"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[4,0]})"), 4),
                    {"tensor 't'", "begin <= end", "[4, 0]"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0.0,4]})"), 4),
                    {"tensor 't'", "two non-negative integers"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":["0","4"]})"), 4),
                    {"tensor 't'", "two non-negative integers"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[-4,0]})"), 4),
                    {"tensor 't'", "two non-negative integers"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4,8]})"), 4),
                    {"tensor 't'", "[begin, end]"});
}

TEST(SafetensorsCorrupt, TilingRules) {
  const std::string overlap = R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                              R"("b":{"dtype":"U8","shape":[16],"data_offsets":[8,24]}})";
  ExpectFormatError(MakeFile(overlap, 24), {"tensor 'b'", "overlapping", "start at 16", "tensor 'a'"});
  const std::string gap = R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"U8","shape":[8],"data_offsets":[16,24]}})";
  ExpectFormatError(MakeFile(gap, 24), {"tensor 'b'", "gap of 8 bytes", "start at 8"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[4,8]})"), 8),
                    {"tensor 't'", "start at 0", "gap of 4"});
  // Bytes no tensor covers (a polyglot tail).
  ExpectFormatError(MakeFile(kValidHeader, 30), {"cover the 30-byte data section", "6 trailing bytes"});
  ExpectFormatError(MakeFile("{}", 1), {"1 trailing bytes"});
}

TEST(SafetensorsCorrupt, DuplicateKeys) {
  ExpectFormatError(MakeFile(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                             R"("t":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})",
                             0),
                    {"unique keys", "'t' twice"});
  ExpectFormatError(MakeFile(OneTensor(R"({"dtype":"U8","dtype":"U8","shape":[0],"data_offsets":[0,0]})"), 0),
                    {"'dtype' twice"});
  ExpectFormatError(MakeFile(R"({"__metadata__":{"a":"1","a":"2"}})", 0), {"'a' twice"});
}

TEST(SafetensorsCorrupt, MetadataNotStringMap) {
  ExpectFormatError(MakeFile(R"({"__metadata__":{"k":1}})", 0), {"__metadata__", "key 'k'", "string value"});
  ExpectFormatError(MakeFile(R"({"__metadata__":{"k":{"x":"y"}}})", 0), {"__metadata__", "string value"});
  ExpectFormatError(MakeFile(R"({"__metadata__":["a"]})", 0), {"__metadata__", "object of strings", "array"});
}

TEST(SafetensorsCorrupt, CheckpointIndex) {
  test::TempDir dir;
  const std::vector<uint8_t> shard = MakeFile(OneTensor(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})"), 4);
  test::WriteFileBytes(dir.File("s1.safetensors"), shard);
  auto expect_error = [&](const std::string& index, std::initializer_list<const char*> words) {
    const std::string path = dir.File("model.safetensors.index.json");
    test::WriteFileBytes(path, {index.begin(), index.end()});
    try {
      SafetensorsCheckpoint::Open(path);
      ADD_FAILURE() << "expected FormatError for " << index;
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << "missing '" << w << "' in: " << msg;
    }
  };
  expect_error(R"({"weight_map":{"t":"s1.safetensors","u":"s1.safetensors"}})",
               {"tensor 'u'", "shard 's1.safetensors'", "missing"});
  expect_error(R"({"weight_map":{"t":"../s1.safetensors"}})", {"tensor 't'", "inside the checkpoint", "'../s1"});
  expect_error(R"({"weight_map":{"t":"/etc/passwd"}})", {"tensor 't'", "inside the checkpoint"});
  expect_error(R"({"weight_map":{"t":"sub/../../x"}})", {"inside the checkpoint"});
  expect_error(R"({"weight_map":{"t":3}})", {"tensor 't'", "shard file name"});
  expect_error(R"({"weight_map":{}})", {"weight_map", "found none"});
  expect_error(R"({"metadata":{}})", {"weight_map"});
  expect_error(R"({"weight_map":)", {"not valid JSON"});
  expect_error(R"({"metadata":[],"weight_map":{"t":"s1.safetensors"}})", {"\"metadata\"", "object"});
  // A second shard holding a tensor the index does not list.
  const std::vector<uint8_t> shard2 = MakeFile(R"({"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                               R"("v":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}})",
                                               4);
  test::WriteFileBytes(dir.File("s2.safetensors"), shard2);
  expect_error(R"({"weight_map":{"t":"s2.safetensors"}})", {"tensor 'v'", "unlisted", "s2.safetensors"});
  expect_error(R"({"weight_map":{"t":"s1.safetensors","v":"s2.safetensors"}})", {"tensor 't'", "also in"});
  // A listed shard that does not exist is an IoError naming it.
  const std::string path = dir.File("model.safetensors.index.json");
  const std::string missing = R"({"weight_map":{"t":"nope.safetensors"}})";
  test::WriteFileBytes(path, {missing.begin(), missing.end()});
  try {
    SafetensorsCheckpoint::Open(path);
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos) << e.what();
  }
  // The valid index opens.
  const std::string ok = R"({"metadata":{"total_size":4},"weight_map":{"t":"s1.safetensors"}})";
  test::WriteFileBytes(path, {ok.begin(), ok.end()});
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir.path().string()).tensors().size(), 1u);
}

}  // namespace
}  // namespace nibble::io
