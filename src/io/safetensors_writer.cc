// safetensors writer: one file, or shards plus model.safetensors.index.json.
// Everything is validated before the first byte is written, so a bad call leaves no file.
#include <fmt/core.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "io/atomic_writer.h"
#include "io/reader.h"
#include "io/safetensors.h"
#include "nibble/error.h"

namespace nibble::io {
namespace {

using nlohmann::ordered_json;

// Upstream MAX_HEADER_SIZE (safetensors/src/tensor.rs); readers reject longer headers.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// The data section starts on an 8-byte boundary: the header is padded with spaces (upstream N_LEN).
constexpr uint64_t kHeaderAlign = 8;

// Checks names, dtypes and byte counts; returns each tensor's byte count.
std::vector<uint64_t> ValidateTensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  for (const auto& [key, value] : metadata)
    if (!IsValidUtf8(key) || !IsValidUtf8(value))
      throw FormatError(
          fmt::format("{}: __metadata__: expected UTF-8 keys and values, found invalid UTF-8 in key '{}'", path, key));
  std::set<std::string_view> names;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    if (!IsValidUtf8(t.name))
      throw FormatError(fmt::format("{}: tensor name: expected UTF-8, found invalid UTF-8", path));
    if (t.name == "__metadata__")
      throw FormatError(fmt::format("{}: tensor '__metadata__': expected a tensor name, found the reserved key", path));
    if (!names.insert(t.name).second)
      throw FormatError(fmt::format("{}: tensor '{}': expected unique tensor names, found a duplicate", path, t.name));
    const auto& info = GetDTypeInfo(t.dtype);
    if (info.safetensors.empty())
      throw FormatError(
          fmt::format("{}: tensor '{}': expected a dtype safetensors can hold, found {}", path, t.name, info.name));
    uint64_t want = 0;
    try {
      want = DTypeBytes(t.dtype, static_cast<uint64_t>(t.shape.NumElems()));
    } catch (const ShapeError& e) {
      throw ShapeError(fmt::format("{}: tensor '{}': {}", path, t.name, e.what()));
    }
    if (!t.produce && t.data.size() != want)
      throw ShapeError(fmt::format("{}: tensor '{}': expected {} bytes for shape {} {}, found {}", path, t.name, want,
                                   t.shape.ToString(), info.name, t.data.size()));
    sizes.push_back(want);
  }
  return sizes;
}

// Header JSON: __metadata__ first (when there is any), then the tensors in order, padded.
std::string BuildHeader(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                        const std::vector<uint64_t>& sizes, const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    ordered_json entry = ordered_json::object();
    entry["dtype"] = std::string(GetDTypeInfo(tensors[i].dtype).safetensors);
    entry["shape"] = ordered_json::array();
    for (int64_t d : tensors[i].shape.dims()) entry["shape"].push_back(d);
    entry["data_offsets"] = ordered_json::array({offset, offset + sizes[i]});
    offset += sizes[i];
    header[tensors[i].name] = std::move(entry);
  }
  std::string text = header.dump();
  text.resize((text.size() + kHeaderAlign - 1) / kHeaderAlign * kHeaderAlign, ' ');
  if (text.size() > kMaxHeaderBytes)
    throw FormatError(fmt::format("{}: expected a header of at most {} bytes (100 MB), found {}", path, kMaxHeaderBytes,
                                  text.size()));
  return text;
}

void WriteValidated(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                    const std::vector<uint64_t>& sizes, const std::map<std::string, std::string>& metadata,
                    Existing existing) {
  const std::string header = BuildHeader(path, tensors, sizes, metadata);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  AtomicWriter out(path, existing);
  out.Write(length, sizeof(length));
  out.Write(header.data(), header.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::span<const uint8_t> data = tensors[i].produce ? tensors[i].produce() : tensors[i].data;
    if (data.size() != sizes[i])
      throw ShapeError(fmt::format("{}: tensor '{}': expected {} bytes, the producer gave {}", path, tensors[i].name,
                                   sizes[i], data.size()));
    out.Write(data);
  }
  out.Commit();
}

}  // namespace

void WriteSafetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                      const std::map<std::string, std::string>& metadata, Existing existing) {
  const auto sizes = ValidateTensors(path, tensors, metadata);
  WriteValidated(path, tensors, sizes, metadata, existing);
}

void WriteSafetensorsSharded(const std::string& dir, const std::vector<SafetensorsWriteTensor>& tensors,
                             const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  if (max_shard_bytes == 0) throw ConfigError(fmt::format("{}: expected max_shard_bytes > 0, found 0", dir));
  const auto sizes = ValidateTensors(dir, tensors, metadata);

  // Greedy split in the given order, as transformers' shard_checkpoint does.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!shards.back().empty() && shard_bytes + sizes[i] > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += sizes[i];
    total_bytes += sizes[i];
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create directory: {}", dir, ec.message()));
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    std::vector<SafetensorsWriteTensor> part;
    std::vector<uint64_t> part_sizes;
    for (size_t i : shards[s]) {
      part.push_back(tensors[i]);
      part_sizes.push_back(sizes[i]);
      weight_map[tensors[i].name] = name;
    }
    WriteValidated((fs::path(dir) / name).string(), part, part_sizes, metadata, Existing::kRefuse);
  }
  // transformers: json.dumps(index, indent=2, sort_keys=True) + "\n".
  nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", std::move(weight_map)}};
  const std::string text = index.dump(2) + "\n";
  AtomicWriter out((fs::path(dir) / "model.safetensors.index.json").string(), Existing::kRefuse);
  out.Write(text.data(), text.size());
  out.Commit();
}

}  // namespace nibble::io
