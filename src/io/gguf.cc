// GGUF reader: parses the header, the metadata and the tensor infos of a v2/v3
// file, checking every count, length and offset against the bytes that remain
// before it is used. The writer lives in gguf_writer.cc.
#include "io/gguf.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "io/reader.h"
#include "nibble/error.h"

namespace nibble::io {
namespace {

// Each kv needs at least a key length (u64) and a value type (u32); each tensor
// info at least a name length (u64), n_dims (u32), one ne (u64), ggml_type (u32)
// and offset (u64). Counts that cannot fit in the remaining bytes are rejected
// before anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 4;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;
// Arrays reserve at most this many items up front (64 MiB of GgufValue); longer
// arrays grow as their elements are actually read.
constexpr uint64_t kMaxReserveItems = uint64_t{1} << 20;
constexpr uint64_t kMaxExtent = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// Where a value sits, for error messages: "key 'k'" or "tensor 'n'", plus the
// index path into (nested) arrays. Built only once per kv or tensor.
struct Where {
  std::string label;
  std::vector<uint64_t> index;

  std::string ToString() const {
    std::string s = label;
    for (uint64_t i : index) s += fmt::format("[{}]", i);
    return s;
  }
};

[[noreturn]] void FailAt(const Reader& r, const Where& w, std::string_view msg) {
  r.Fail(fmt::format("{}: {}", w.ToString(), msg));
}

void NeedBytes(const Reader& r, uint64_t n, const Where& w, std::string_view what) {
  if (n > r.remaining())
    FailAt(r, w,
           fmt::format("{} needs {} bytes at offset {}, but only {} remain (file truncated?)", what, n, r.pos(),
                       r.remaining()));
}

// string = u64 length + bytes; must be valid UTF-8.
std::string_view ReadString(Reader& r, const Where& w, std::string_view what) {
  NeedBytes(r, 8, w, "string length");
  const auto len = r.Read<uint64_t>("string length");
  if (len > r.remaining())
    FailAt(r, w,
           fmt::format("{} has length {} at offset {}, but only {} bytes remain", what, len, r.pos() - 8,
                       r.remaining()));
  const std::string_view s = r.ReadStringView(len, "string");
  if (!IsValidUtf8(s)) FailAt(r, w, fmt::format("{} of {} bytes is not valid UTF-8", what, len));
  return s;
}

template <typename T>
T ReadScalar(Reader& r, const Where& w) {
  NeedBytes(r, sizeof(T), w, "value");
  return r.Read<T>("value");
}

GgufArray ReadArray(Reader& r, int depth, Where& w);

// Reads one value of `type`; `depth` counts the arrays that enclose it.
GgufValue ReadValue(Reader& r, GgufType type, int depth, Where& w) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::kU8: v.value = uint64_t{ReadScalar<uint8_t>(r, w)}; break;
    case GgufType::kI8: v.value = int64_t{ReadScalar<int8_t>(r, w)}; break;
    case GgufType::kU16: v.value = uint64_t{ReadScalar<uint16_t>(r, w)}; break;
    case GgufType::kI16: v.value = int64_t{ReadScalar<int16_t>(r, w)}; break;
    case GgufType::kU32: v.value = uint64_t{ReadScalar<uint32_t>(r, w)}; break;
    case GgufType::kI32: v.value = int64_t{ReadScalar<int32_t>(r, w)}; break;
    case GgufType::kU64: v.value = ReadScalar<uint64_t>(r, w); break;
    case GgufType::kI64: v.value = ReadScalar<int64_t>(r, w); break;
    case GgufType::kF32: v.value = double{ReadScalar<float>(r, w)}; break;
    case GgufType::kF64: v.value = ReadScalar<double>(r, w); break;
    case GgufType::kBool: {
      const auto b = ReadScalar<uint8_t>(r, w);
      if (b > 1) FailAt(r, w, fmt::format("bool value must be 0 or 1, found {}", b));
      v.value = b != 0;
      break;
    }
    case GgufType::kString: v.value = std::string(ReadString(r, w, "string value")); break;
    case GgufType::kArray: v.value = ReadArray(r, depth + 1, w); break;
  }
  return v;
}

// array = u32 elem_type | u64 count | count elements.
GgufArray ReadArray(Reader& r, int depth, Where& w) {
  if (depth > kGgufMaxArrayDepth)
    FailAt(r, w, fmt::format("arrays nest {} deep, more than the limit of {}", depth, kGgufMaxArrayDepth));
  NeedBytes(r, 4 + 8, w, "array header");
  const auto elem = r.Read<uint32_t>("array element type");
  if (elem >= kNumGgufTypes)
    FailAt(r, w, fmt::format("unknown array element type {} (expected 0 to {})", elem, kNumGgufTypes - 1));
  const auto count = r.Read<uint64_t>("array count");
  const uint64_t min_bytes = GgufMinValueBytes(static_cast<GgufType>(elem));
  if (count > r.remaining() / min_bytes)
    FailAt(r, w,
           fmt::format("array count {} of {} elements needs at least {} bytes each, but only {} bytes remain", count,
                       GgufTypeName(static_cast<GgufType>(elem)), min_bytes, r.remaining()));
  GgufArray a;
  a.elem_type = static_cast<GgufType>(elem);
  a.items.reserve(static_cast<size_t>(std::min(count, kMaxReserveItems)));
  w.index.push_back(0);
  for (uint64_t i = 0; i < count; ++i) {
    w.index.back() = i;
    a.items.push_back(ReadValue(r, a.elem_type, depth, w));
  }
  w.index.pop_back();
  return a;
}

// A tensor info before its data span is known.
struct TensorInfo {
  GgufTensor t;
  uint64_t num_bytes = 0;
};

// n_dims | ne[n_dims] | ggml_type | offset, after the name. Checks everything
// that does not depend on where the data section starts.
void ReadTensorInfo(Reader& r, const Where& w, uint64_t alignment, TensorInfo& info) {
  NeedBytes(r, 4, w, "n_dims");
  const auto n_dims = r.Read<uint32_t>("n_dims");
  if (n_dims == 0 || n_dims > kGgufMaxDims)
    FailAt(r, w, fmt::format("n_dims is {}, expected 1 to {}", n_dims, kGgufMaxDims));
  NeedBytes(r, uint64_t{n_dims} * 8, w, "ne");
  int64_t ne[kGgufMaxDims] = {};
  bool any_zero = false;
  for (uint32_t j = 0; j < n_dims; ++j) {
    const auto d = r.Read<uint64_t>("ne");
    if (d > kMaxExtent)
      FailAt(r, w,
             fmt::format("ne[{}] is {} (negative as int64: {}); extents must be in [0, 2^63)", j, d,
                         static_cast<int64_t>(d)));
    ne[j] = static_cast<int64_t>(d);
    any_zero = any_zero || d == 0;
  }
  // Product of the extents in int64, as ggml computes ggml_nelements.
  int64_t num_elems = any_zero ? 0 : 1;
  for (uint32_t j = 0; j < n_dims && !any_zero; ++j) {
    if (num_elems > std::numeric_limits<int64_t>::max() / ne[j])
      FailAt(r, w,
             fmt::format("element count of ne [{}] overflows int64",
                         fmt::join(std::span<const int64_t>(ne, n_dims), ", ")));
    num_elems *= ne[j];
  }
  NeedBytes(r, 4 + 8, w, "ggml_type and offset");
  const auto ggml_type = r.Read<uint32_t>("ggml_type");
  const std::optional<DType> dtype = DTypeFromGgml(ggml_type);
  if (!dtype) FailAt(r, w, fmt::format("unknown or unsupported ggml type {}", ggml_type));
  const DTypeInfo& di = GetDTypeInfo(*dtype);
  if (ne[0] % di.block_elems != 0)
    FailAt(r, w,
           fmt::format("ne[0] = {} is not a multiple of the {} block size {}", ne[0], di.name, di.block_elems));
  // Every row is whole blocks, so the element count is too.
  const uint64_t blocks = static_cast<uint64_t>(num_elems) / di.block_elems;
  if (blocks > std::numeric_limits<uint64_t>::max() / di.block_bytes)
    FailAt(r, w, fmt::format("byte size of {} {} elements overflows 64 bits", num_elems, di.name));
  info.num_bytes = blocks * di.block_bytes;
  info.t.offset = r.Read<uint64_t>("offset");
  if (info.t.offset % alignment != 0)
    FailAt(r, w, fmt::format("offset {} is not a multiple of the alignment {}", info.t.offset, alignment));
  info.t.dtype = *dtype;
  // GGUF lists ne[0] (fastest-varying) first; nibble's Shape is row-major.
  int64_t dims[kGgufMaxDims];
  for (uint32_t j = 0; j < n_dims; ++j) dims[j] = ne[n_dims - 1 - j];
  info.t.shape = Shape(std::span<const int64_t>(dims, n_dims));
}

// general.alignment: a u32, non-zero power of two; 32 when absent.
uint64_t ReadAlignment(const Reader& r, const std::vector<GgufKv>& kv) {
  for (const GgufKv& e : kv) {
    if (e.key != kGgufAlignmentKey) continue;
    const Where w{fmt::format("key '{}'", e.key), {}};
    if (e.value.type != GgufType::kU32)
      FailAt(r, w, fmt::format("expected type u32, found {}", GgufTypeName(e.value.type)));
    const uint64_t a = std::get<uint64_t>(e.value.value);
    if (a == 0 || (a & (a - 1)) != 0) FailAt(r, w, fmt::format("alignment {} is not a non-zero power of two", a));
    return a;
  }
  return kGgufDefaultAlignment;
}

}  // namespace

std::string_view GgufTypeName(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  static_assert(std::size(kNames) == kNumGgufTypes);
  const auto i = static_cast<uint32_t>(t);
  return i < kNumGgufTypes ? kNames[i] : std::string_view("invalid");
}

uint64_t GgufMinValueBytes(GgufType t) {
  // string = u64 length; array = u32 elem_type + u64 count; bool = 1 byte.
  static constexpr uint64_t kBytes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
  static_assert(std::size(kBytes) == kNumGgufTypes);
  return kBytes[static_cast<uint32_t>(t)];
}

GgufFile GgufFile::Open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::Open(path);
  GgufFile f = Parse(file->bytes(), path);
  f.file_ = std::move(file);
  return f;
}

GgufFile GgufFile::Parse(std::span<const uint8_t> bytes, const std::string& source) {
  Reader r(bytes, source);
  GgufFile f;
  f.source_ = source;

  // Header: magic | version | n_tensors | n_kv.
  if (r.remaining() < 4)
    r.Fail(fmt::format("file has {} bytes, too short for the GGUF magic (4 bytes)", r.remaining()));
  const auto magic = r.Read<uint32_t>("magic");
  if (magic != kGgufMagic)
    r.Fail(fmt::format("bad magic 0x{:08x} (expected 0x{:08x}, \"GGUF\"): not a GGUF file", magic, kGgufMagic));
  const auto version = r.Read<uint32_t>("version");
  // A big-endian file's version 2 or 3 reads as 0x02000000 / 0x03000000 here
  // (ggml's check: the low 16 bits are zero).
  if (version != 0 && (version & 0xFFFFu) == 0)
    r.Fail(fmt::format("version field reads 0x{:08x}, which looks byte-swapped (version {}): big-endian GGUF files "
                       "are not supported",
                       version, __builtin_bswap32(version)));
  if (version == 1)
    r.Fail("GGUF version 1 is not supported (it used 32-bit counts; expected version 2 or 3, re-convert the file)");
  if (version != 2 && version != 3) r.Fail(fmt::format("unsupported GGUF version {} (expected 2 or 3)", version));
  f.version_ = version;
  const auto n_tensors = r.Read<uint64_t>("tensor count");
  const auto n_kv = r.Read<uint64_t>("kv count");
  if (n_kv > r.remaining() / kMinKvBytes)
    r.Fail(fmt::format("kv count {} is impossible: each key-value pair needs at least {} bytes, but only {} remain",
                       n_kv, kMinKvBytes, r.remaining()));
  if (n_tensors > r.remaining() / kMinTensorInfoBytes)
    r.Fail(fmt::format("tensor count {} is impossible: each tensor info needs at least {} bytes, but only {} remain",
                       n_tensors, kMinTensorInfoBytes, r.remaining()));

  // Key-value pairs. Views into `bytes` detect duplicates without copying.
  std::unordered_set<std::string_view> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    Where w{fmt::format("key #{}", i), {}};
    const std::string_view key = ReadString(r, w, "key");
    if (key.empty()) FailAt(r, w, "key is empty");
    w.label = fmt::format("key '{}'", key);
    if (!keys.insert(key).second) FailAt(r, w, "duplicate key (it appears more than once)");
    NeedBytes(r, 4, w, "value type");
    const auto type = r.Read<uint32_t>("value type");
    if (type >= kNumGgufTypes)
      FailAt(r, w, fmt::format("unknown value type {} (expected 0 to {})", type, kNumGgufTypes - 1));
    GgufKv kv;
    kv.key = std::string(key);
    kv.value = ReadValue(r, static_cast<GgufType>(type), 0, w);
    f.kv_.push_back(std::move(kv));
  }
  f.alignment_ = ReadAlignment(r, f.kv_);

  // Tensor infos.
  if (n_tensors > r.remaining() / kMinTensorInfoBytes)
    r.Fail(fmt::format("tensor count {} is impossible: each tensor info needs at least {} bytes, but only {} remain "
                       "after the metadata",
                       n_tensors, kMinTensorInfoBytes, r.remaining()));
  std::vector<TensorInfo> infos;
  std::unordered_set<std::string_view> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Where w{fmt::format("tensor #{}", i), {}};
    const std::string_view name = ReadString(r, w, "tensor name");
    if (name.empty()) FailAt(r, w, "tensor name is empty");
    w.label = fmt::format("tensor '{}'", name);
    if (!names.insert(name).second) FailAt(r, w, "duplicate tensor name (it appears more than once)");
    TensorInfo& info = infos.emplace_back();
    info.t.name = std::string(name);
    ReadTensorInfo(r, w, f.alignment_, info);
  }

  // Data section: starts at the next multiple of the alignment (pos <= size, so no overflow).
  const uint64_t pos = r.pos();
  f.data_offset_ = (pos + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  if (n_tensors > 0 && f.data_offset_ > bytes.size())
    r.Fail(fmt::format("data section would start at offset {} (padded to the alignment {}), past the end of the "
                       "file ({} bytes)",
                       f.data_offset_, f.alignment_, bytes.size()));
  const uint64_t data_size = n_tensors > 0 ? bytes.size() - f.data_offset_ : 0;
  for (TensorInfo& info : infos) {
    const Where w{fmt::format("tensor '{}'", info.t.name), {}};
    if (info.t.offset > data_size || info.num_bytes > data_size - info.t.offset)
      FailAt(r, w,
             fmt::format("data at offset {} + {} bytes runs past the end of the data section ({} bytes from file "
                         "offset {}; file truncated?)",
                         info.t.offset, info.num_bytes, data_size, f.data_offset_));
    info.t.data = bytes.subspan(static_cast<size_t>(f.data_offset_ + info.t.offset),
                                static_cast<size_t>(info.num_bytes));
  }

  // Tensors must not share bytes: walk them in offset order (empty ones hold nothing).
  std::vector<size_t> order(infos.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return infos[a].t.offset < infos[b].t.offset; });
  const TensorInfo* prev = nullptr;
  for (size_t k : order) {
    const TensorInfo& cur = infos[k];
    if (cur.num_bytes == 0) continue;
    if (prev != nullptr && cur.t.offset < prev->t.offset + prev->num_bytes)
      r.Fail(fmt::format("tensor '{}' (offset {}, {} bytes) overlaps tensor '{}' (offset {}, {} bytes)", cur.t.name,
                         cur.t.offset, cur.num_bytes, prev->t.name, prev->t.offset, prev->num_bytes));
    if (prev == nullptr || cur.t.offset + cur.num_bytes > prev->t.offset + prev->num_bytes) prev = &cur;
  }

  f.tensors_.reserve(infos.size());
  for (TensorInfo& info : infos) f.tensors_.push_back(std::move(info.t));
  return f;
}

const GgufKv* GgufFile::FindKey(std::string_view key) const {
  for (const GgufKv& kv : kv_)
    if (kv.key == key) return &kv;
  return nullptr;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  for (const GgufTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace nibble::io
