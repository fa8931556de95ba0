// Format detection and opening of model files behind ModelSource.
#include "api/model_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/convert.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "quant/registry.h"

namespace nibble::api {
namespace fs = std::filesystem;

std::string_view FileFormatName(FileFormat f) {
  switch (f) {
    case FileFormat::kSafetensors:
      return "safetensors";
    case FileFormat::kGguf:
      return "gguf";
    case FileFormat::kLlama2c:
      return "llama2c";
  }
  return "unknown";
}

namespace {

FileFormat Detect(const std::string& path) {
  // stat's own reason (no such file, too many levels of symbolic links, permission
  // denied), and a FIFO or device is refused before anything opens it.
  io::CheckPathKind(path, "model", /*allow_dir=*/true);
  std::error_code ec;
  if (fs::is_directory(path, ec)) return FileFormat::kSafetensors;
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".json") return FileFormat::kSafetensors;  // a sharded index
  // O_NONBLOCK: a FIFO swapped in after the check above cannot block the open.
  uint8_t head[9] = {};
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open for reading: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(fmt::format("{}: the model is not a regular file", path));
  }
  const ssize_t n = ::pread(fd, head, sizeof(head), 0);
  ::close(fd);
  const auto got = static_cast<size_t>(n < 0 ? 0 : n);
  if (got >= 4 && std::memcmp(head, "GGUF", 4) == 0) return FileFormat::kGguf;
  if (ext == ".gguf") return FileFormat::kGguf;  // the parser reports the bad magic
  if (ext == ".safetensors" || (got == 9 && head[8] == '{')) return FileFormat::kSafetensors;
  if (ext == ".bin") return FileFormat::kLlama2c;
  throw FormatError(fmt::format(
      "{}: unknown model format: expected a safetensors file or directory, a GGUF file or a llama2.c .bin", path));
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

}  // namespace

std::string EscapeForDisplay(std::string_view s, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max_bytes) {
      // Do not cut a UTF-8 sequence in half: drop continuation bytes already copied.
      while (!out.empty() && (static_cast<uint8_t>(out.back()) & 0xC0) == 0x80) out.pop_back();
      if (!out.empty() && static_cast<uint8_t>(out.back()) >= 0xC0) out.pop_back();
      return out + "…";
    }
    const char c = s[i];
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          out += fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

ModelSource ModelSource::Open(const std::string& path) {
  ModelSource m;
  m.path_ = path;
  m.format_ = Detect(path);
  switch (m.format_) {
    case FileFormat::kGguf: {
      m.gguf_ = io::GgufFile::Open(path);
      for (const auto& t : m.gguf_->tensors()) m.tensors_.push_back({t.name, t.dtype, t.shape, t.data});
      m.file_bytes_ = FileSize(path);
      break;
    }
    case FileFormat::kSafetensors: {
      m.st_ = io::SafetensorsCheckpoint::Open(path);
      for (const auto& shard : m.st_->shards()) {
        m.file_bytes_ += FileSize(shard.source());
        for (const auto& t : shard.tensors()) m.tensors_.push_back({t.name, t.dtype, t.shape, t.data});
      }
      break;
    }
    case FileFormat::kLlama2c: {
      m.l2c_ = io::Llama2cCheckpoint::Open(path);
      for (const auto& t : m.l2c_->tensors())
        m.tensors_.push_back({t.name, DType::kF32, t.shape, t.data, t.name.starts_with("freq_cis")});
      m.file_bytes_ = FileSize(path);
      break;
    }
  }
  return m;
}

std::string GgufValueTypeName(const io::GgufValue& v) {
  if (v.type != io::GgufType::kArray) return std::string(io::GgufTypeName(v.type));
  const auto& arr = std::get<io::GgufArray>(v.value);
  return fmt::format("array[{}]", io::GgufTypeName(arr.elem_type));
}

const float* SourceAsF32(ExecContext& ctx, const SourceTensor& t, const std::string& file, Tensor& scratch) {
  const int64_t n = t.shape.NumElems();
  const quant::FormatTraits* q = quant::FindFormat(t.dtype);
  if (!IsFloat(t.dtype) && q == nullptr)
    throw ConfigError(fmt::format("{}: tensor '{}': dtype {} is not a number format", file, t.name, DTypeName(t.dtype)));
  if ((q != nullptr && n % q->block_elems != 0) || t.data.size() != DTypeBytes(t.dtype, static_cast<uint64_t>(n)))
    throw ShapeError(fmt::format("{}: tensor '{}': {} bytes do not hold shape {} of {}", file, t.name, t.data.size(),
                                 t.shape.ToString(), DTypeName(t.dtype)));
  const bool aligned = reinterpret_cast<uintptr_t>(t.data.data()) % alignof(float) == 0;
  if ((t.dtype == DType::kF32 || t.dtype == DType::kTF32) && aligned) return reinterpret_cast<const float*>(t.data.data());
  scratch = Tensor(ctx.allocator(), DType::kF32, Shape{n});
  float* out = static_cast<float*>(scratch.data());
  if (t.dtype == DType::kF64) {
    for (int64_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, t.data.data() + i * 8, 8);
      out[i] = static_cast<float>(v);
    }
  } else if (kernels::IsConvertible(t.dtype)) {
    if (aligned || t.dtype != DType::kF32) {
      kernels::ConvertToF32Parallel(ctx.num_threads(), t.dtype, t.data.data(), out, static_cast<size_t>(n));
    } else {
      std::memcpy(out, t.data.data(), t.data.size());
    }
  } else {
    q->dequantize(t.data.data(), out, n);
  }
  return out;
}

std::string GgufValueToString(const io::GgufValue& v, size_t max_items) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return fmt::format("\"{}\"", EscapeForDisplay(x, 120));
        } else if constexpr (std::is_same_v<T, io::GgufArray>) {
          std::string s = x.items.size() > max_items ? fmt::format("[{} items: ", x.items.size()) : "[";
          for (size_t i = 0; i < x.items.size() && i < max_items; ++i) {
            if (i) s += ", ";
            s += GgufValueToString(x.items[i], max_items);
          }
          if (x.items.size() > max_items) s += ", …";
          return s + "]";
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          return fmt::format("{:g}", x);
        } else {
          return fmt::format("{}", x);
        }
      },
      v.value);
}

}  // namespace nibble::api
