// safetensors reader: header validation after the upstream rules
// (huggingface/safetensors, safetensors/src/tensor.rs) and sharded checkpoints.
#include "io/safetensors.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "io/reader.h"
#include "nibble/error.h"

namespace nibble::io {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Upstream MAX_HEADER_SIZE (safetensors/src/tensor.rs): 100,000,000 bytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Shape::NumElems' limit: element counts above 2^62 are rejected.
constexpr uint64_t kMaxElems = uint64_t{1} << 62;

// A JSON value shortened for an error message.
std::string Brief(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Parses `text` as JSON, rejecting duplicate keys in any object (nlohmann keeps
// the last one silently; the safetensors README disallows them).
json ParseJsonStrict(std::string_view text, const std::string& source, std::string_view what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t cb = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && parsed.is_string()) {
      if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  // nlohmann stops at a NUL as if the input ended; JSON text never holds a raw NUL.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    throw FormatError(fmt::format("{}: expected {} to be JSON text, found a NUL byte at offset {}", source, what, nul));
  json j;
  try {
    j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}: {} is not valid JSON: {}", source, what, e.what()));
  }
  if (!duplicate.empty())
    throw FormatError(fmt::format("{}: {}: expected unique keys, found key '{}' twice", source, what, duplicate));
  return j;
}

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> AsU64(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

std::string SafetensorsDTypeList() {
  std::string s;
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto& info = GetDTypeInfo(static_cast<DType>(i));
    if (info.safetensors.empty()) continue;
    if (!s.empty()) s += ", ";
    s += info.safetensors;
  }
  return s;
}

std::map<std::string, std::string> ParseMetadata(const json& j, const std::string& source) {
  if (!j.is_object())
    throw FormatError(
        fmt::format("{}: __metadata__: expected an object of strings, found {} {}", source, j.type_name(), Brief(j)));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string())
      throw FormatError(fmt::format("{}: __metadata__: key '{}': expected a string value, found {} {}", source, key,
                                    value.type_name(), Brief(value)));
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// Reads one tensor entry {"dtype", "shape", "data_offsets"}; checks its own
// fields and that its byte range fits `data_bytes` and matches shape x dtype.
SafetensorsTensor ParseTensorEntry(const std::string& name, const json& entry, uint64_t data_bytes,
                                   const std::string& source) {
  const std::string where = fmt::format("{}: tensor '{}'", source, name);
  if (!entry.is_object())
    throw FormatError(fmt::format("{}: expected an object with dtype, shape and data_offsets, found {} {}", where,
                                  entry.type_name(), Brief(entry)));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field))
      throw FormatError(fmt::format("{}: expected field '{}', found none (keys: {})", where, field, Brief(entry)));

  SafetensorsTensor t;
  t.name = name;
  t.file = source;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string())
    throw FormatError(
        fmt::format("{}: expected dtype to be a string, found {} {}", where, dtype.type_name(), Brief(dtype)));
  const auto parsed_dtype = DTypeFromSafetensors(dtype.get<std::string>());
  if (!parsed_dtype)
    throw FormatError(fmt::format("{}: unknown dtype '{}': expected one of {}", where, dtype.get<std::string>(),
                                  SafetensorsDTypeList()));
  t.dtype = *parsed_dtype;

  const json& shape = entry["shape"];
  if (!shape.is_array())
    throw FormatError(fmt::format("{}: expected shape to be an array of extents, found {} {}", where, shape.type_name(),
                                  Brief(shape)));
  if (shape.size() > static_cast<size_t>(kMaxRank))
    throw FormatError(
        fmt::format("{}: expected a shape of rank at most {}, found rank {}", where, kMaxRank, shape.size()));
  std::vector<int64_t> dims;
  uint64_t num_elems = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const auto d = AsU64(shape[i]);
    if (!d)
      throw FormatError(fmt::format("{}: expected shape[{}] to be a non-negative integer extent, found {}", where, i,
                                    Brief(shape[i])));
    if (*d > kMaxElems) throw FormatError(fmt::format("{}: expected shape[{}] <= 2^62, found {}", where, i, *d));
    dims.push_back(static_cast<int64_t>(*d));
    if (*d != 0 && num_elems > kMaxElems / *d)
      throw FormatError(
          fmt::format("{}: expected at most 2^62 elements, found shape {} (overflow)", where, Brief(shape)));
    num_elems *= *d;
  }
  t.shape = Shape(std::span<const int64_t>(dims));

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    throw FormatError(fmt::format("{}: expected data_offsets to be [begin, end], found {}", where, Brief(offsets)));
  const auto begin = AsU64(offsets[0]);
  const auto end = AsU64(offsets[1]);
  if (!begin || !end)
    throw FormatError(
        fmt::format("{}: expected data_offsets to be two non-negative integers, found {}", where, Brief(offsets)));
  t.begin = *begin;
  t.end = *end;
  if (t.begin > t.end)
    throw FormatError(fmt::format("{}: expected data_offsets begin <= end, found [{}, {}]", where, t.begin, t.end));
  if (t.end > data_bytes)
    throw FormatError(fmt::format("{}: expected data_offsets within the {}-byte data section, found [{}, {}]", where,
                                  data_bytes, t.begin, t.end));
  const uint64_t elem_bytes = GetDTypeInfo(t.dtype).block_bytes;
  uint64_t want = 0;
  if (__builtin_mul_overflow(num_elems, elem_bytes, &want) || want != t.end - t.begin)
    throw FormatError(fmt::format("{}: expected {} x {} bytes for shape {} {}, found data_offsets [{}, {}] ({} bytes)",
                                  where, num_elems, elem_bytes, t.shape.ToString(), dtype.get<std::string>(), t.begin,
                                  t.end, t.end - t.begin));
  return t;
}

}  // namespace

SafetensorsFile SafetensorsFile::Open(const std::string& path) {
  auto file = MappedFile::Open(path);
  SafetensorsFile st = Parse(file->bytes(), path);
  st.file_ = std::move(file);
  return st;
}

SafetensorsFile SafetensorsFile::Parse(std::span<const uint8_t> bytes, const std::string& source) {
  Reader r(bytes, source);
  const uint64_t n = r.Read<uint64_t>("header length (u64)");
  if (n > kMaxHeaderBytes)
    r.Fail(fmt::format("expected a header length of at most {} bytes (100 MB), found {}", kMaxHeaderBytes, n));
  if (n > r.remaining())
    r.Fail(
        fmt::format("expected a header of {} bytes after the length field, found only {} bytes (header length "
                    "past the end of the file)",
                    n, r.remaining()));
  const std::string_view header = r.ReadStringView(n, "header");
  if (header.empty() || header.front() != '{')
    r.Fail(fmt::format("expected the header to start with '{{', found {}",
                       header.empty() ? std::string("an empty header")
                                      : fmt::format("byte 0x{:02x}", static_cast<uint8_t>(header[0]))));
  if (!IsValidUtf8(header)) r.Fail("expected the header to be UTF-8 JSON, found invalid UTF-8");
  const json j = ParseJsonStrict(header, source, "header");
  if (!j.is_object()) r.Fail(fmt::format("expected the header to be a JSON object, found {}", j.type_name()));

  SafetensorsFile st;
  st.source_ = source;
  st.header_bytes_ = n;
  const uint64_t data_bytes = r.remaining();
  const std::span<const uint8_t> data = bytes.subspan(r.pos());
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      st.metadata_ = ParseMetadata(value, source);
      continue;
    }
    st.tensors_.push_back(ParseTensorEntry(key, value, data_bytes, source));
  }

  // Upstream rule: sorted by offsets, the tensors tile the data section with no
  // hole and no overlap, and cover it to the last byte (no polyglot files).
  std::stable_sort(st.tensors_.begin(), st.tensors_.end(),
                   [](const auto& a, const auto& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  const SafetensorsTensor* prev = nullptr;
  for (auto& t : st.tensors_) {
    if (t.begin < covered)
      r.Fail(
          fmt::format("tensor '{}': expected data_offsets to start at {} (end of tensor '{}'), found [{}, {}] "
                      "(overlapping)",
                      t.name, covered, prev->name, t.begin, t.end));
    if (t.begin > covered)
      r.Fail(fmt::format("tensor '{}': expected data_offsets to start at {}{}, found [{}, {}] (a gap of {} bytes)",
                         t.name, covered, prev ? fmt::format(" (end of tensor '{}')", prev->name) : "", t.begin, t.end,
                         t.begin - covered));
    covered = t.end;
    prev = &t;
    t.data = data.subspan(static_cast<size_t>(t.begin), static_cast<size_t>(t.end - t.begin));
  }
  if (covered != data_bytes)
    r.Fail(
        fmt::format("expected the tensors to cover the {}-byte data section, found {} bytes covered ({} trailing "
                    "bytes)",
                    data_bytes, covered, data_bytes - covered));
  for (size_t i = 0; i < st.tensors_.size(); ++i) st.index_.emplace(st.tensors_[i].name, i);
  return st;
}

const SafetensorsTensor* SafetensorsFile::FindTensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

// A shard name from weight_map must stay inside the checkpoint directory.
bool ShardPathIsSafe(const std::string& shard) {
  if (shard.empty()) return false;
  const fs::path p(shard);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::Open(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    // transformers looks for the single file first, then the index.
    if (fs::exists(fs::path(path) / kSingleName, ec)) {
      file = (fs::path(path) / kSingleName).string();
    } else if (fs::exists(fs::path(path) / kIndexName, ec)) {
      file = (fs::path(path) / kIndexName).string();
    } else {
      throw IoError(
          fmt::format("{}: expected {} or {} in the directory, found neither", path, kSingleName, kIndexName));
    }
  }
  SafetensorsCheckpoint ck;
  if (!file.ends_with(".json")) {
    ck.shards_.push_back(SafetensorsFile::Open(file));
    ck.metadata_ = ck.shards_.front().metadata();
    return ck;
  }

  ck.index_path_ = file;
  const auto mapped = MappedFile::Open(file);
  const auto bytes = mapped->bytes();
  if (bytes.size() > kMaxHeaderBytes)
    throw FormatError(
        fmt::format("{}: expected an index of at most {} bytes, found {}", file, kMaxHeaderBytes, bytes.size()));
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!IsValidUtf8(text)) throw FormatError(fmt::format("{}: expected UTF-8 JSON, found invalid UTF-8", file));
  const json j = ParseJsonStrict(text, file, "index");
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError(fmt::format("{}: expected an object with a \"weight_map\" object, found {}", file, Brief(j)));
  if (j.contains("metadata")) {
    const json& meta = j["metadata"];
    if (!meta.is_object())
      throw FormatError(fmt::format("{}: expected \"metadata\" to be an object, found {}", file, Brief(meta)));
    // Values such as total_size are numbers; they are kept as their JSON text.
    for (const auto& [key, value] : meta.items())
      ck.metadata_.emplace(key, value.is_string() ? value.get<std::string>() : value.dump());
  }

  const json& weight_map = j["weight_map"];
  if (weight_map.empty()) throw FormatError(fmt::format("{}: expected weight_map to list tensors, found none", file));
  std::map<std::string, std::string> tensor_to_shard;
  std::map<std::string, size_t> shard_index;  // shard name -> position in shards_ (sorted by name)
  for (const auto& [name, shard] : weight_map.items()) {
    if (!shard.is_string())
      throw FormatError(fmt::format("{}: tensor '{}': expected a shard file name, found {}", file, name, Brief(shard)));
    const std::string shard_name = shard.get<std::string>();
    if (!ShardPathIsSafe(shard_name))
      throw FormatError(
          fmt::format("{}: tensor '{}': expected a shard path inside the checkpoint directory, found "
                      "'{}'",
                      file, name, shard_name));
    tensor_to_shard.emplace(name, shard_name);
    shard_index.emplace(shard_name, 0);
  }
  const fs::path dir = fs::path(file).parent_path();
  for (auto& [shard_name, index] : shard_index) {
    index = ck.shards_.size();
    ck.shards_.push_back(SafetensorsFile::Open((dir / shard_name).string()));
  }
  for (const auto& [name, shard_name] : tensor_to_shard) {
    if (ck.shards_[shard_index.at(shard_name)].FindTensor(name) == nullptr)
      throw FormatError(
          fmt::format("{}: tensor '{}': expected in shard '{}' (weight_map), found missing", file, name, shard_name));
  }
  for (const auto& [shard_name, index] : shard_index) {
    for (const auto& t : ck.shards_[index].tensors()) {
      const auto it = tensor_to_shard.find(t.name);
      if (it == tensor_to_shard.end())
        throw FormatError(
            fmt::format("{}: tensor '{}': expected every tensor of shard '{}' in weight_map, found it "
                        "unlisted",
                        file, t.name, shard_name));
      if (it->second != shard_name)
        throw FormatError(fmt::format("{}: tensor '{}': expected only in shard '{}' (weight_map), found also in '{}'",
                                      file, t.name, it->second, shard_name));
    }
  }
  return ck;
}

std::vector<const SafetensorsTensor*> SafetensorsCheckpoint::tensors() const {
  std::vector<const SafetensorsTensor*> out;
  for (const auto& shard : shards_)
    for (const auto& t : shard.tensors()) out.push_back(&t);
  return out;
}

}  // namespace nibble::io
