// KL-divergence reference files: a streamed writer and a validating, mapped reader
// (layout in kld_file.h). Every count is checked before it sizes anything.
#include "io/kld_file.h"

#include <fmt/core.h>

#include <cmath>
#include <cstring>

#include "io/reader.h"
#include "nibble/error.h"

namespace nibble::io {
namespace {

constexpr char kMagic[8] = {'N', 'I', 'B', 'K', 'L', 'D', '\0', '\0'};
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxCtx = int64_t{1} << 20;
constexpr uint32_t kMaxModelLen = 4096;
constexpr uint64_t kRecordFixedBytes = 12;  // f32 nll, i32 top1, f32 scalar

// The first limit `h` breaks, or "" when it is valid.
std::string HeaderProblem(const KldHeader& h) {
  if (h.storage > 1) return fmt::format("field 'storage' is {}, expected 0 (full) or 1 (top-k)", h.storage);
  if (h.n_vocab < 1 || h.n_vocab > kMaxVocab)
    return fmt::format("field 'n_vocab' is {}, expected 1..{}", h.n_vocab, kMaxVocab);
  if (h.storage == 0 && h.top_k != 0) return fmt::format("field 'top_k' is {} with full storage, expected 0", h.top_k);
  if (h.storage == 1 && (h.top_k < 1 || h.top_k > kKldMaxTopK || h.top_k > h.n_vocab))
    return fmt::format("field 'top_k' is {}, expected 1..{} (and at most n_vocab={})", h.top_k, kKldMaxTopK,
                       h.n_vocab);
  if (h.ctx < 2 || h.ctx > kMaxCtx) return fmt::format("field 'ctx' is {}, expected 2..{}", h.ctx, kMaxCtx);
  if (h.n_windows < 1 || h.n_windows > kMaxCtx)
    return fmt::format("field 'n_windows' is {}, expected 1..{}", h.n_windows, kMaxCtx);
  if (h.bos_id < -1 || h.bos_id >= h.n_vocab)
    return fmt::format("field 'bos_id' is {}, expected -1 or an id below n_vocab={}", h.bos_id, h.n_vocab);
  if (h.model.size() > kMaxModelLen)
    return fmt::format("field 'model' is {} bytes, at most {}", h.model.size(), kMaxModelLen);
  return {};
}

}  // namespace

uint64_t KldHeader::RecordBytes() const {
  return kRecordFixedBytes + (storage == 0 ? 2 * static_cast<uint64_t>(n_vocab) : 8 * static_cast<uint64_t>(top_k));
}

void ValidateKldHeader(const KldHeader& h, const std::string& source) {
  if (std::string p = HeaderProblem(h); !p.empty()) throw ConfigError(fmt::format("{}: {}", source, p));
}

KldFile KldFile::Open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::Open(path);
  KldFile f = Parse(file->bytes(), path);
  f.file_ = std::move(file);
  return f;
}

KldFile KldFile::Parse(std::span<const uint8_t> bytes, const std::string& path) {
  KldFile f;
  f.bytes_ = bytes;
  f.path_ = path;
  Reader r(bytes, path);
  const std::string_view magic = r.ReadStringView(8, "magic");
  if (std::memcmp(magic.data(), kMagic, 8) != 0)
    r.Fail("not a nibble KL-divergence reference file (magic is not \"NIBKLD\"; write one with "
           "`nibble perplexity --kl-divergence-base FILE`)");
  const auto version = r.Read<uint32_t>("version");
  if (version != kKldVersion) r.Fail(fmt::format("field 'version' is {}, expected {}", version, kKldVersion));
  KldHeader& h = f.header_;
  h.storage = r.Read<uint32_t>("storage");
  h.top_k = r.Read<uint32_t>("top_k");
  if (const auto reserved = r.Read<uint32_t>("reserved"); reserved != 0)
    r.Fail(fmt::format("field 'reserved' is {}, expected 0", reserved));
  h.n_vocab = r.Read<int64_t>("n_vocab");
  h.ctx = r.Read<int64_t>("ctx");
  h.n_windows = r.Read<int64_t>("n_windows");
  h.bos_id = r.Read<int32_t>("bos_id");
  const auto model_len = r.Read<uint32_t>("model_len");
  if (model_len > kMaxModelLen) r.Fail(fmt::format("field 'model_len' is {}, at most {}", model_len, kMaxModelLen));
  h.model = std::string(r.ReadStringView(model_len, "model"));
  if (std::string p = HeaderProblem(h); !p.empty()) r.Fail(p);
  const auto n_tokens = r.Read<int64_t>("n_tokens");
  if (n_tokens != h.n_windows * h.ctx)
    r.Fail(fmt::format("field 'n_tokens' is {}, expected n_windows * ctx = {}", n_tokens, h.n_windows * h.ctx));
  // Exact size check before reading anything sized by the header (both factors are
  // bounded above, so the products fit in 64 bits).
  const uint64_t need =
      4 * static_cast<uint64_t>(n_tokens) + static_cast<uint64_t>(h.NumRecords()) * h.RecordBytes();
  if (r.remaining() != need)
    r.Fail(fmt::format("the header implies {} bytes of tokens and records after offset {}, found {}", need, r.pos(),
                       r.remaining()));
  f.tokens_.resize(static_cast<size_t>(n_tokens));
  std::memcpy(f.tokens_.data(), r.ReadBytes(4 * static_cast<uint64_t>(n_tokens), "tokens").data(),
              4 * static_cast<size_t>(n_tokens));
  for (size_t i = 0; i < f.tokens_.size(); ++i)
    if (f.tokens_[i] < 0 || f.tokens_[i] >= h.n_vocab)
      r.Fail(fmt::format("token {} is {}, outside the vocabulary of {}", i, f.tokens_[i], h.n_vocab));
  f.records_offset_ = r.pos();
  return f;
}

KldRecord KldFile::Record(int64_t i, std::vector<uint16_t>& codes, std::vector<int32_t>& ids,
                          std::vector<float>& logprobs) const {
  const KldHeader& h = header_;
  if (i < 0 || i >= h.NumRecords())
    throw FormatError(fmt::format("{}: record {} requested, the file holds {}", path_, i, h.NumRecords()));
  const uint64_t size = h.RecordBytes();
  Reader r(bytes_.subspan(records_offset_ + static_cast<uint64_t>(i) * size, size), path_);
  const auto fail = [&](const std::string& what) {
    throw FormatError(fmt::format("{}: record {}: {}", path_, i, what));
  };
  KldRecord rec;
  rec.nll = r.Read<float>("nll");
  rec.top1 = r.Read<int32_t>("top1");
  rec.scalar = r.Read<float>("scalar");
  if (std::isnan(rec.nll) || std::isnan(rec.scalar)) fail("nll or its log-prob scalar is NaN");
  if (rec.top1 < 0 || rec.top1 >= h.n_vocab)
    fail(fmt::format("top1 is {}, outside the vocabulary of {}", rec.top1, h.n_vocab));
  if (h.storage == 0) {
    codes.resize(static_cast<size_t>(h.n_vocab));
    std::memcpy(codes.data(), r.ReadBytes(2 * static_cast<uint64_t>(h.n_vocab), "codes").data(), 2 * codes.size());
    rec.codes = codes;
    return rec;
  }
  ids.resize(h.top_k);
  logprobs.resize(h.top_k);
  for (uint32_t j = 0; j < h.top_k; ++j) {
    ids[j] = r.Read<int32_t>("id");
    logprobs[j] = r.Read<float>("logprob");
    if (ids[j] < 0 || ids[j] >= h.n_vocab)
      fail(fmt::format("top-k entry {} has id {}, outside the vocabulary of {}", j, ids[j], h.n_vocab));
    if (std::isnan(logprobs[j])) fail(fmt::format("top-k entry {} has a NaN log-prob", j));
  }
  rec.ids = ids;
  rec.logprobs = logprobs;
  return rec;
}

KldWriter::KldWriter(const std::string& path, Existing existing, const KldHeader& header,
                     std::span<const int32_t> tokens)
    : out_(path, existing), header_(header) {
  ValidateKldHeader(header, path);
  if (static_cast<int64_t>(tokens.size()) != header.n_windows * header.ctx)
    throw ConfigError(fmt::format("{}: {} tokens given for {} windows of {}", path, tokens.size(), header.n_windows,
                                  header.ctx));
  const auto put = [&](const auto& v) { out_.Write(&v, sizeof(v)); };
  out_.Write(kMagic, 8);
  put(kKldVersion);
  put(header.storage);
  put(header.top_k);
  put(uint32_t{0});
  put(header.n_vocab);
  put(header.ctx);
  put(header.n_windows);
  put(header.bos_id);
  put(static_cast<uint32_t>(header.model.size()));
  out_.Write(header.model.data(), header.model.size());
  put(static_cast<int64_t>(tokens.size()));
  out_.Write(tokens.data(), tokens.size_bytes());
}

void KldWriter::Write(const KldRecord& r) {
  const bool full = header_.storage == 0;
  if (full ? r.codes.size() != static_cast<size_t>(header_.n_vocab)
           : (r.ids.size() != header_.top_k || r.logprobs.size() != header_.top_k))
    throw ShapeError(fmt::format("{}: record {} does not match the header's storage", out_.path(), written_));
  if (written_ >= header_.NumRecords())
    throw ShapeError(fmt::format("{}: more than the {} records the header declares", out_.path(), header_.NumRecords()));
  // One write per record (AtomicWriter does not buffer).
  buf_.resize(header_.RecordBytes());
  uint8_t* p = buf_.data();
  const auto put = [&p](const void* v, size_t n) {
    std::memcpy(p, v, n);
    p += n;
  };
  put(&r.nll, 4);
  put(&r.top1, 4);
  put(&r.scalar, 4);
  if (full) {
    put(r.codes.data(), r.codes.size_bytes());
  } else {
    for (size_t j = 0; j < r.ids.size(); ++j) {
      put(&r.ids[j], 4);
      put(&r.logprobs[j], 4);
    }
  }
  out_.Write(buf_);
  ++written_;
}

void KldWriter::Commit() {
  if (written_ != header_.NumRecords())
    throw ShapeError(fmt::format("{}: {} records written, the header declares {}", out_.path(), written_,
                                 header_.NumRecords()));
  out_.Commit();
}

}  // namespace nibble::io
