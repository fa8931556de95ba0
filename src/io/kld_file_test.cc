// KL-divergence reference files: write/read round trip in both storages (the layout
// is checked byte by byte against kld_file.h's table), and corrupt files: every
// truncation, bad magic/version/fields, ids outside the vocabulary, NaN values, a
// size that disagrees with the header — each a FormatError naming the field.
#include "io/kld_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "nibble/error.h"
#include "util/file_bytes.h"
#include "util/temp_dir.h"

namespace nibble::io {
namespace {

KldHeader SmallHeader(uint32_t storage) {
  KldHeader h;
  h.storage = storage;
  h.top_k = storage == 1 ? 3 : 0;
  h.n_vocab = 7;
  h.ctx = 6;  // scores positions 3..4: 2 records per window
  h.n_windows = 2;
  h.bos_id = 1;
  h.model = "ref.gguf";
  return h;
}

std::vector<int32_t> Tokens(const KldHeader& h) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < h.n_windows * h.ctx; ++i) t.push_back(static_cast<int32_t>(i % h.n_vocab));
  return t;
}

// Writes a file whose record i has nll = i + 0.5, top1 = i % V, codes[j] = 100*i + j,
// ids {i%V, (i+1)%V, (i+2)%V} with logprobs -j - i.
std::string WriteSample(const test::TempDir& dir, uint32_t storage) {
  const KldHeader h = SmallHeader(storage);
  const std::string path = dir.File(storage == 0 ? "full.kld" : "topk.kld");
  KldWriter w(path, Existing::kReplace, h, Tokens(h));
  for (int64_t i = 0; i < h.NumRecords(); ++i) {
    std::vector<uint16_t> codes;
    for (int j = 0; j < h.n_vocab; ++j) codes.push_back(static_cast<uint16_t>(100 * i + j));
    std::vector<int32_t> ids;
    std::vector<float> lps;
    for (uint32_t j = 0; j < h.top_k; ++j) {
      ids.push_back(static_cast<int32_t>((i + j) % h.n_vocab));
      lps.push_back(-static_cast<float>(j + i));
    }
    KldRecord r;
    r.nll = static_cast<float>(i) + 0.5f;
    r.top1 = static_cast<int32_t>(i % h.n_vocab);
    r.scalar = -0.25f;
    if (storage == 0) r.codes = codes;
    r.ids = ids;
    r.logprobs = lps;
    w.Write(r);
  }
  w.Commit();
  return path;
}

TEST(KldFile, RoundTripBothStorages) {
  test::TempDir dir;
  for (uint32_t storage : {0u, 1u}) {
    const std::string path = WriteSample(dir, storage);
    const KldHeader want = SmallHeader(storage);
    // Size from the layout table: 56-byte fixed header + model + i64 n_tokens + tokens + records.
    const uint64_t records = 4 * (12 + (storage == 0 ? 2 * 7 : 8 * 3));
    EXPECT_EQ(std::filesystem::file_size(path), 56 + want.model.size() + 8 + 4 * 12 + records);
    const KldFile f = KldFile::Open(path);
    EXPECT_EQ(f.header().storage, storage);
    EXPECT_EQ(f.header().top_k, want.top_k);
    EXPECT_EQ(f.header().n_vocab, 7);
    EXPECT_EQ(f.header().ctx, 6);
    EXPECT_EQ(f.header().n_windows, 2);
    EXPECT_EQ(f.header().bos_id, 1);
    EXPECT_EQ(f.header().model, "ref.gguf");
    EXPECT_EQ(f.tokens(), Tokens(want));
    std::vector<uint16_t> codes;
    std::vector<int32_t> ids;
    std::vector<float> lps;
    for (int64_t i = 0; i < 4; ++i) {
      const KldRecord r = f.Record(i, codes, ids, lps);
      EXPECT_EQ(r.nll, static_cast<float>(i) + 0.5f);
      EXPECT_EQ(r.top1, i % 7);
      EXPECT_EQ(r.scalar, -0.25f);
      if (storage == 0) {
        ASSERT_EQ(r.codes.size(), 7u);
        for (int j = 0; j < 7; ++j) EXPECT_EQ(r.codes[static_cast<size_t>(j)], 100 * i + j);
      } else {
        ASSERT_EQ(r.ids.size(), 3u);
        for (uint32_t j = 0; j < 3; ++j) {
          EXPECT_EQ(r.ids[j], (i + j) % 7);
          EXPECT_EQ(r.logprobs[j], -static_cast<float>(j + i));
        }
      }
    }
    EXPECT_THROW(f.Record(4, codes, ids, lps), FormatError);
  }
}

// Opens `bytes` as a file and returns the FormatError message ("" when it opened and
// every record read cleanly).
std::string OpenError(const test::TempDir& dir, const std::vector<uint8_t>& bytes) {
  const std::string path = dir.File("bad.kld");
  test::WriteFileBytes(path, bytes);
  try {
    const KldFile f = KldFile::Open(path);
    std::vector<uint16_t> c;
    std::vector<int32_t> i;
    std::vector<float> l;
    for (int64_t r = 0; r < f.header().NumRecords(); ++r) f.Record(r, c, i, l);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

template <typename T>
void Poke(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

TEST(KldFile, EveryTruncationIsAFormatError) {
  test::TempDir dir;
  for (uint32_t storage : {0u, 1u}) {
    const std::vector<uint8_t> good = test::ReadFileBytes(WriteSample(dir, storage));
    for (size_t n = 0; n < good.size(); ++n) {
      const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
      EXPECT_NE(OpenError(dir, cut), "") << "prefix of " << n << " bytes";
    }
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    EXPECT_NE(OpenError(dir, longer).find("the header implies"), std::string::npos);
  }
}

TEST(KldFile, CorruptFieldsNameTheField) {
  test::TempDir dir;
  const std::vector<uint8_t> full = test::ReadFileBytes(WriteSample(dir, 0));
  const std::vector<uint8_t> topk = test::ReadFileBytes(WriteSample(dir, 1));
  const size_t tokens_at = 56 + 8 + 8;  // fixed header, "ref.gguf", n_tokens
  const size_t records_at = tokens_at + 4 * 12;
  struct Case {
    const char* name;
    const std::vector<uint8_t>* base;
    std::function<void(std::vector<uint8_t>&)> poke;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"magic", &full, [](auto& b) { b[0] = 'X'; }, "magic"},
      {"version", &full, [](auto& b) { Poke<uint32_t>(b, 8, 2); }, "'version' is 2"},
      {"storage", &full, [](auto& b) { Poke<uint32_t>(b, 12, 7); }, "'storage' is 7"},
      {"top_k with full", &full, [](auto& b) { Poke<uint32_t>(b, 16, 3); }, "'top_k' is 3 with full"},
      {"top_k zero", &topk, [](auto& b) { Poke<uint32_t>(b, 16, 0); }, "'top_k' is 0"},
      {"top_k above vocab", &topk, [](auto& b) { Poke<uint32_t>(b, 16, 8); }, "'top_k' is 8"},
      {"reserved", &full, [](auto& b) { Poke<uint32_t>(b, 20, 1); }, "'reserved'"},
      {"vocab", &full, [](auto& b) { Poke<int64_t>(b, 24, 0); }, "'n_vocab' is 0"},
      {"huge vocab", &full, [](auto& b) { Poke<int64_t>(b, 24, int64_t{1} << 40); }, "'n_vocab'"},
      {"ctx", &full, [](auto& b) { Poke<int64_t>(b, 32, 1); }, "'ctx' is 1"},
      {"windows", &full, [](auto& b) { Poke<int64_t>(b, 40, -3); }, "'n_windows' is -3"},
      {"windows mismatch", &full, [](auto& b) { Poke<int64_t>(b, 40, 3); }, "'n_tokens' is 12"},
      {"bos", &full, [](auto& b) { Poke<int32_t>(b, 48, 7); }, "'bos_id' is 7"},
      {"model_len", &full, [](auto& b) { Poke<uint32_t>(b, 52, 100000); }, "'model_len'"},
      {"token", &full, [=](auto& b) { Poke<int32_t>(b, tokens_at + 8, 9); }, "token 2 is 9"},
      {"negative token", &full, [=](auto& b) { Poke<int32_t>(b, tokens_at, -1); }, "token 0 is -1"},
      {"top1", &full, [=](auto& b) { Poke<int32_t>(b, records_at + 4, 70); }, "record 0: top1 is 70"},
      {"nan nll", &full, [=](auto& b) { Poke<float>(b, records_at, NAN); }, "record 0: nll"},
      {"topk id", &topk, [=](auto& b) { Poke<int32_t>(b, records_at + 12 + 8, 7); }, "entry 1 has id 7"},
      {"topk nan", &topk, [=](auto& b) { Poke<float>(b, records_at + 12 + 4, NAN); }, "entry 0 has a NaN"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> b = *c.base;
    c.poke(b);
    const std::string err = OpenError(dir, b);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": got '" << err << "'";
    EXPECT_NE(err.find("bad.kld"), std::string::npos) << c.name << ": the message names the file";
  }
}

TEST(KldFile, WriterLeavesNothingBehindWhenIncomplete) {
  test::TempDir dir;
  const KldHeader h = SmallHeader(0);
  const std::string path = dir.File("partial.kld");
  {
    KldWriter w(path, Existing::kReplace, h, Tokens(h));
    std::vector<uint16_t> codes(7, 1);
    KldRecord r;
    r.codes = codes;
    w.Write(r);
    EXPECT_THROW(w.Commit(), ShapeError);  // 1 of 4 records
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "the temporary is removed too";
  KldHeader bad = h;
  bad.n_vocab = 0;
  EXPECT_THROW(KldWriter(dir.File("x.kld"), Existing::kRefuse, bad, {}), ConfigError);
  EXPECT_THROW(KldWriter(dir.File("y.kld"), Existing::kRefuse, h, std::vector<int32_t>(5)), ConfigError);
}

}  // namespace
}  // namespace nibble::io
