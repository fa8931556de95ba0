// GGUF v3 writer: validates metadata and tensors (so nibble never writes a file
// its reader rejects), then writes header, kv, tensor infos and padded data
// through AtomicWriter. Layout as in gguf.h; padding follows gguf-py and ggml.
#include <fmt/core.h>

#include <cstring>
#include <limits>
#include <unordered_set>

#include "io/atomic_writer.h"
#include "io/gguf.h"
#include "io/reader.h"
#include "nibble/error.h"

namespace nibble::io {
namespace {

constexpr uint32_t kGgufWriteVersion = 3;

// Little-endian byte buffer for the header (kv and tensor infos).
class ByteSink {
 public:
  template <typename T>
  void Put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &v, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// Writer-side context for error messages: "<path>: key 'k'[2]: ...".
struct Ctx {
  const std::string& path;
  std::string_view key;
  std::vector<uint64_t> index;

  [[noreturn]] void Fail(std::string_view msg) const {
    std::string where = fmt::format("{}: key '{}'", path, key);
    for (uint64_t i : index) where += fmt::format("[{}]", i);
    throw FormatError(fmt::format("{}: {}", where, msg));
  }
};

// Integers may be held as either int64 or uint64; they must fit `type`'s range.
template <typename T>
T GetInt(const GgufValue& v, const Ctx& ctx) {
  if (const auto* u = std::get_if<uint64_t>(&v.value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      ctx.Fail(fmt::format("value {} does not fit {}", *u, GgufTypeName(v.type)));
    return static_cast<T>(*u);
  }
  if (const auto* s = std::get_if<int64_t>(&v.value)) {
    if (*s < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        (*s > 0 && static_cast<uint64_t>(*s) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
      ctx.Fail(fmt::format("value {} does not fit {}", *s, GgufTypeName(v.type)));
    return static_cast<T>(*s);
  }
  ctx.Fail(fmt::format("value of type {} does not hold an integer", GgufTypeName(v.type)));
}

template <typename T>
const T& GetAs(const GgufValue& v, const Ctx& ctx, std::string_view expected) {
  const T* p = std::get_if<T>(&v.value);
  if (p == nullptr) ctx.Fail(fmt::format("value of type {} does not hold a {}", GgufTypeName(v.type), expected));
  return *p;
}

void PutValue(ByteSink& out, const GgufValue& v, int depth, Ctx& ctx) {
  switch (v.type) {
    case GgufType::kU8: out.Put(GetInt<uint8_t>(v, ctx)); return;
    case GgufType::kI8: out.Put(GetInt<int8_t>(v, ctx)); return;
    case GgufType::kU16: out.Put(GetInt<uint16_t>(v, ctx)); return;
    case GgufType::kI16: out.Put(GetInt<int16_t>(v, ctx)); return;
    case GgufType::kU32: out.Put(GetInt<uint32_t>(v, ctx)); return;
    case GgufType::kI32: out.Put(GetInt<int32_t>(v, ctx)); return;
    case GgufType::kU64: out.Put(GetInt<uint64_t>(v, ctx)); return;
    case GgufType::kI64: out.Put(GetInt<int64_t>(v, ctx)); return;
    case GgufType::kF32: out.Put(static_cast<float>(GetAs<double>(v, ctx, "double"))); return;
    case GgufType::kF64: out.Put(GetAs<double>(v, ctx, "double")); return;
    case GgufType::kBool: out.Put<uint8_t>(GetAs<bool>(v, ctx, "bool") ? 1 : 0); return;
    case GgufType::kString: {
      const std::string& s = GetAs<std::string>(v, ctx, "string");
      if (!IsValidUtf8(s)) ctx.Fail("string value is not valid UTF-8");
      out.PutString(s);
      return;
    }
    case GgufType::kArray: {
      const GgufArray& a = GetAs<GgufArray>(v, ctx, "GgufArray");
      if (depth + 1 > kGgufMaxArrayDepth)
        ctx.Fail(fmt::format("arrays nest more than {} deep, which nibble's reader rejects", kGgufMaxArrayDepth));
      if (static_cast<uint32_t>(a.elem_type) >= kNumGgufTypes)
        ctx.Fail(fmt::format("invalid array element type {}", static_cast<uint32_t>(a.elem_type)));
      out.Put(static_cast<uint32_t>(a.elem_type));
      out.Put<uint64_t>(a.items.size());
      ctx.index.push_back(0);
      for (size_t i = 0; i < a.items.size(); ++i) {
        ctx.index.back() = i;
        if (a.items[i].type != a.elem_type)
          ctx.Fail(fmt::format("item of type {} in an array of {}", GgufTypeName(a.items[i].type),
                               GgufTypeName(a.elem_type)));
        PutValue(out, a.items[i], depth + 1, ctx);
      }
      ctx.index.pop_back();
      return;
    }
  }
  ctx.Fail(fmt::format("invalid value type {}", static_cast<uint32_t>(v.type)));
}

uint64_t PadTo(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Byte count of one tensor after checking that GGUF can hold it as given.
uint64_t CheckTensor(const std::string& path, const GgufWriteTensor& t) {
  const DTypeInfo& di = GetDTypeInfo(t.dtype);
  if (di.ggml_type < 0)
    throw FormatError(fmt::format("{}: tensor '{}': dtype {} cannot be stored in GGUF (it has no ggml type)", path,
                                  t.name, di.name));
  const int rank = t.shape.rank();
  if (rank < 1 || rank > static_cast<int>(kGgufMaxDims))
    throw ShapeError(fmt::format("{}: tensor '{}': shape {} has rank {}, GGUF holds 1 to {} dims", path, t.name,
                                 t.shape.ToString(), rank, kGgufMaxDims));
  const std::string what = fmt::format("{}: tensor '{}': shape {}", path, t.name, t.shape.ToString());
  const int64_t n = CheckedNumElems(t.shape.dims(), what);
  // ne[0] is the last row-major extent; packed rows must be whole blocks.
  if (t.shape[rank - 1] % di.block_elems != 0)
    throw ShapeError(fmt::format("{}: last extent {} is not a multiple of the {} block size {}", what,
                                 t.shape[rank - 1], di.name, di.block_elems));
  const uint64_t num_bytes = DTypeBytes(t.dtype, static_cast<uint64_t>(n));
  if (!t.produce && num_bytes != t.data.size())
    throw ShapeError(fmt::format("{}: {} needs {} bytes, but {} were given", what, di.name, num_bytes, t.data.size()));
  return num_bytes;
}

}  // namespace

void WriteGguf(const std::string& path, const std::vector<GgufKv>& kv, const std::vector<GgufWriteTensor>& tensors,
               Existing existing) {
  ByteSink out;
  out.Put(kGgufMagic);
  out.Put(kGgufWriteVersion);
  out.Put<uint64_t>(tensors.size());
  out.Put<uint64_t>(kv.size());

  uint64_t alignment = kGgufDefaultAlignment;
  std::unordered_set<std::string_view> keys;
  for (const GgufKv& e : kv) {
    Ctx ctx{path, e.key, {}};
    if (e.key.empty() || !IsValidUtf8(e.key)) ctx.Fail("key is empty or not valid UTF-8");
    if (!keys.insert(e.key).second) ctx.Fail("duplicate key");
    if (e.key == kGgufAlignmentKey) {
      if (e.value.type != GgufType::kU32)
        ctx.Fail(fmt::format("expected type u32, found {}", GgufTypeName(e.value.type)));
      alignment = GetInt<uint32_t>(e.value, ctx);
      if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        ctx.Fail(fmt::format("alignment {} is not a non-zero power of two", alignment));
    }
    out.PutString(e.key);
    out.Put(static_cast<uint32_t>(e.value.type));
    PutValue(out, e.value, 0, ctx);
  }

  // Tensor infos; each tensor's data is padded to the alignment, as gguf-py and ggml do.
  std::unordered_set<std::string_view> names;
  std::vector<uint64_t> sizes;
  sizes.reserve(tensors.size());
  uint64_t offset = 0;
  for (const GgufWriteTensor& t : tensors) {
    if (t.name.empty() || !IsValidUtf8(t.name))
      throw FormatError(fmt::format("{}: tensor name '{}' is empty or not valid UTF-8", path, t.name));
    if (!names.insert(t.name).second)
      throw FormatError(fmt::format("{}: tensor '{}': duplicate tensor name", path, t.name));
    const uint64_t num_bytes = CheckTensor(path, t);
    sizes.push_back(num_bytes);
    out.PutString(t.name);
    const int rank = t.shape.rank();
    out.Put(static_cast<uint32_t>(rank));
    for (int j = rank - 1; j >= 0; --j) out.Put(static_cast<uint64_t>(t.shape[j]));
    out.Put(static_cast<uint32_t>(GetDTypeInfo(t.dtype).ggml_type));
    out.Put(offset);
    offset += PadTo(num_bytes, alignment);
  }

  AtomicWriter w(path, existing);
  w.Write(out.bytes());
  w.WriteZeros(static_cast<size_t>(PadTo(out.bytes().size(), alignment) - out.bytes().size()));
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::span<const uint8_t> data = tensors[i].produce ? tensors[i].produce() : tensors[i].data;
    if (data.size() != sizes[i])
      throw ShapeError(fmt::format("{}: tensor '{}': expected {} bytes, the producer gave {}", path, tensors[i].name,
                                   sizes[i], data.size()));
    w.Write(data);
    w.WriteZeros(static_cast<size_t>(PadTo(sizes[i], alignment) - sizes[i]));
  }
  w.Commit();
}

}  // namespace nibble::io
