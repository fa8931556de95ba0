// The reference file of a KL-divergence run (`nibble perplexity --kl-divergence-base`):
// the tokens of every window and, per scored position, the reference model's NLL,
// argmax and compact log-probabilities. Read back by `--kl-divergence`.
//
// Layout (little-endian, no padding; docs/FORMATS.md):
//   0   char[8] magic "NIBKLD\0\0"
//   8   u32     version (1)
//   12  u32     storage: 0 = full u16 grid, 1 = top-k
//   16  u32     top_k (0 for full storage; 1..kMaxTopK for top-k)
//   20  u32     reserved (0)
//   24  i64     n_vocab (1..2^24)
//   32  i64     ctx, the window length (2..2^20)
//   40  i64     n_windows (>= 1); n_tokens = n_windows * ctx
//   48  i32     bos_id placed at each window's start (-1: none)
//   52  u32     model_len (<= 4096), then model_len bytes: the reference model's path
//   ..  i32     tokens[n_tokens], each in [0, n_vocab)
//   ..  records, n_windows * (ctx - 1 - ctx/2) of them in text order, each
//         f32 nll, i32 top1, f32 scalar (full: the largest log-prob; top-k: the log
//         of the mass outside the top k), then
//         full: u16 codes[n_vocab]      top-k: top_k x {i32 id, f32 logprob}
// The file size must equal exactly what the header implies.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/atomic_writer.h"
#include "io/mapped_file.h"

namespace nibble::io {

inline constexpr uint32_t kKldVersion = 1;
inline constexpr uint32_t kKldMaxTopK = 4096;

struct KldHeader {
  uint32_t storage = 0;  // 0 full, 1 top-k
  uint32_t top_k = 0;
  int64_t n_vocab = 0;
  int64_t ctx = 0;
  int64_t n_windows = 0;
  int32_t bos_id = -1;
  std::string model;

  int64_t ScoredPerWindow() const { return ctx - 1 - ctx / 2; }  // positions ctx/2 .. ctx-2
  int64_t NumRecords() const { return n_windows * ScoredPerWindow(); }
  uint64_t RecordBytes() const;
};

// One record as stored; spans point into the mapped file (KldFile) or the caller's
// vectors (KldWriter).
struct KldRecord {
  float nll = 0;
  int32_t top1 = 0;
  float scalar = 0;
  std::span<const uint16_t> codes;     // full: [n_vocab]
  std::span<const int32_t> ids;        // top-k: [top_k]
  std::span<const float> logprobs;     // top-k: [top_k]
};

class KldFile {
 public:
  // Maps and validates the header, the token ids and the file size (FormatError
  // naming the file and field; IoError when it cannot be opened).
  static KldFile Open(const std::string& path);
  // The same over bytes in memory, which must outlive the KldFile (fuzzing, tests).
  static KldFile Parse(std::span<const uint8_t> bytes, const std::string& source);

  const KldHeader& header() const { return header_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Record `i` (0 <= i < NumRecords()); FormatError naming the record when its top1 or
  // an id lies outside the vocabulary or a value is NaN. `scratch` holds the decoded
  // arrays (the file's are not aligned).
  KldRecord Record(int64_t i, std::vector<uint16_t>& codes, std::vector<int32_t>& ids,
                   std::vector<float>& logprobs) const;

 private:
  std::shared_ptr<MappedFile> file_;  // null for Parse
  std::span<const uint8_t> bytes_;
  std::string path_;
  KldHeader header_;
  std::vector<int32_t> tokens_;
  uint64_t records_offset_ = 0;
};

// Streams a reference file: header and tokens at construction, then one Write per
// record; Commit() checks the count and renames the temporary into place.
class KldWriter {
 public:
  KldWriter(const std::string& path, Existing existing, const KldHeader& header, std::span<const int32_t> tokens);
  void Write(const KldRecord& r);
  void Commit();

 private:
  AtomicWriter out_;
  KldHeader header_;
  int64_t written_ = 0;
  std::vector<uint8_t> buf_;
};

// Throws ConfigError naming the field when `h` is outside the limits above.
void ValidateKldHeader(const KldHeader& h, const std::string& source);

}  // namespace nibble::io
