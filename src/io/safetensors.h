// safetensors reader (mmap) and writer, plus sharded checkpoints.
//
// Byte layout: u64 N (little-endian header length) | N bytes of UTF-8 JSON |
// data section. The JSON maps each tensor name to
//   {"dtype": "F32"|"F16"|"BF16"|"F8_E4M3"|"F8_E5M2"|"F64"|"I8"|…|"BOOL",
//    "shape": [d0, d1, …], "data_offsets": [begin, end]}   (offsets into the data section)
// and may hold "__metadata__": {string: string}. Tensors must tile the data
// section without gaps or overlap (the upstream rule). nibble pads the header with
// spaces so the data section starts on an 8-byte boundary, as upstream does.
// Sharded: model.safetensors.index.json = {"metadata": {...}, "weight_map": {tensor: shard file}}.
#pragma once

#include "io/atomic_writer.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "io/mapped_file.h"

namespace nibble::io {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t begin = 0, end = 0;    // data_offsets, relative to the data section
  std::span<const uint8_t> data;  // points into the mapped file
  std::string file;               // the file holding it (for sharded checkpoints)
};

class SafetensorsFile {
 public:
  // Maps and parses `path`. Throws IoError / FormatError naming the file.
  static SafetensorsFile Open(const std::string& path);
  // Parses bytes in memory (fuzzing, tests); the bytes must outlive the result.
  static SafetensorsFile Parse(std::span<const uint8_t> bytes, const std::string& source);

  // Tensors in the order of their data offsets.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t header_bytes() const { return header_bytes_; }
  const SafetensorsTensor* FindTensor(std::string_view name) const;
  const std::string& source() const { return source_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::string source_;
  uint64_t header_bytes_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // tensor name -> position in tensors_
};

// A checkpoint that is one file or several shards behind an index.
class SafetensorsCheckpoint {
 public:
  // `path` is a .safetensors file, a model.safetensors.index.json, or a directory
  // holding either model.safetensors or model.safetensors.index.json (the single
  // file wins when both exist, as in transformers). With an index, every
  // weight_map entry must be in the shard it names, every shard tensor must be
  // listed, and shard paths may not leave the index's directory.
  static SafetensorsCheckpoint Open(const std::string& path);

  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  // Every tensor of every shard, shard by shard.
  std::vector<const SafetensorsTensor*> tensors() const;
  // The metadata of the first shard (the index's "metadata" for sharded ones).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& index_path() const { return index_path_; }  // empty when unsharded

 private:
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, std::string> metadata_;
  std::string index_path_;
};

struct SafetensorsWriteTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::span<const uint8_t> data;
  // When set, called once, right before the tensor is written, for its bytes (then
  // `data` is ignored); the span must stay valid until the next call. This lets a
  // converter stream a model one tensor at a time instead of holding all of it.
  std::function<std::span<const uint8_t>()> produce;
};

// Writes atomically (temp name, fsync, rename). Throws ShapeError when a tensor's
// byte count does not match shape x dtype, FormatError for a dtype safetensors
// cannot hold (tf32, packed types) or a duplicate name.
// `existing`: what to do when `path` exists (kRefuse: ConfigError, also if it appears
// while writing).
void WriteSafetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                      const std::map<std::string, std::string>& metadata, Existing existing);

// Writes shards of at most `max_shard_bytes` of tensor data plus
// model.safetensors.index.json into `dir` (names model-0000i-of-0000n.safetensors).
// Tensors fill shards in the order given; one larger than the limit gets a shard
// of its own. Each shard carries `metadata`; the index holds
// {"metadata": {"total_size": <tensor bytes>}, "weight_map": {...}} as transformers writes.
// `dir` is meant to be an AtomicDir's temporary (the directory as a whole is atomic
// there); each file goes through AtomicWriter and a name already in `dir` is an error.
void WriteSafetensorsSharded(const std::string& dir, const std::vector<SafetensorsWriteTensor>& tensors,
                             const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes);

}  // namespace nibble::io
