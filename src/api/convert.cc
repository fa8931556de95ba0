// nibble::Convert: float tensors of a model file to another float dtype, with the
// error each conversion introduced measured against the f32 source values.
#include "nibble/convert.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "api/model_source.h"
#include "core/dtype.h"
#include "core/check.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/convert.h"
#include "kernels/error_stats.h"
#include "quant/registry.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;
using api::FileFormat;
using api::SourceTensor;

// llama.cpp's llama_ftype values for `general.file_type` (include/llama.h).
constexpr uint32_t kFileTypeAllF32 = 0;
constexpr uint32_t kFileTypeMostlyF16 = 1;
constexpr uint32_t kFileTypeMostlyBF16 = 32;

bool IsNormName(std::string_view name) { return name.find("norm") != std::string_view::npos; }

// A tensor whose values can be carried as f32: dense floats and registered packed formats.
bool IsConvertibleSource(DType t) { return IsFloat(t) || quant::FindFormat(t) != nullptr; }

// The source values as f32: a view when they already are aligned f32, else a
// decoded copy in `scratch`.
const float* SourceAsF32(ExecContext& ctx, const SourceTensor& t, Tensor& scratch) {
  const int64_t n = t.shape.NumElems();
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
    const quant::FormatTraits* fmt = quant::FindFormat(t.dtype);
    NB_CHECK(fmt != nullptr, "no format for {}", DTypeName(t.dtype));
    fmt->dequantize(t.data.data(), out, n);
  }
  return out;
}

struct OutTensor {
  std::string name;
  DType dtype;  // storage dtype written (tf32 is stored as f32)
  Shape shape;
  Tensor owned;                    // converted data, when converted
  std::span<const uint8_t> bytes;  // what to write (owned or the source bytes)
};

void CheckTarget(const ConvertOptions& o, FileFormat in, const std::string& out_path, bool out_gguf) {
  if (!kernels::IsConvertible(o.dtype))
    throw ConfigError(fmt::format("--dtype {}: expected one of f32, f16, bf16, tf32, f8_e4m3fn, f8_e5m2",
                                  DTypeName(o.dtype)));
  if (out_gguf) {
    if (GetDTypeInfo(o.dtype).ggml_type < 0)
      throw ConfigError(fmt::format("{}: GGUF cannot hold dtype {} (GGUF float types: f32, f16, bf16)", out_path,
                                    DTypeName(o.dtype)));
    if (in != FileFormat::kGguf)
      throw ConfigError(fmt::format(
          "{}: GGUF output needs a GGUF input (its metadata is kept); convert {} input to .safetensors instead",
          out_path, api::FileFormatName(in)));
  }
}

}  // namespace

ConvertReport Convert(const std::string& in, const std::string& out, const ConvertOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string ext = fs::path(out).extension().string();
  const bool out_gguf = ext == ".gguf";
  if (!out_gguf && ext != ".safetensors")
    throw ConfigError(fmt::format("{}: output must end in .safetensors or .gguf, found '{}'", out, ext));
  std::error_code ec;
  if (fs::exists(out, ec) && fs::exists(in, ec) && fs::equivalent(in, out, ec))
    throw ConfigError(fmt::format("{}: output is the same file as the input", out));

  const api::ModelSource src = api::ModelSource::Open(in);
  CheckTarget(options, src.format(), out, out_gguf);

  ExecContext ctx(options.num_threads);
  ConvertReport rep;
  rep.in_format = std::string(api::FileFormatName(src.format()));
  rep.out_format = out_gguf ? "gguf" : "safetensors";
  rep.in_file_bytes = src.file_bytes();

  uint64_t total_in = 0, done_in = 0;
  for (const auto& t : src.tensors()) total_in += t.data.size();

  kernels::ErrorStats stats;
  std::vector<OutTensor> outs;
  outs.reserve(src.tensors().size());
  for (const SourceTensor& t : src.tensors()) {
    OutTensor o{t.name, t.dtype, t.shape, {}, t.data};
    const int64_t n = t.shape.NumElems();
    rep.num_params += static_cast<uint64_t>(n);
    if (IsConvertibleSource(t.dtype)) {
      const DType target = options.keep_norms_f32 && IsNormName(t.name) ? DType::kF32 : options.dtype;
      const DType storage = target == DType::kTF32 ? DType::kF32 : target;
      if (t.dtype != target) {
        Tensor scratch, back;
        const float* x = SourceAsF32(ctx, t, scratch);
        o.owned = Tensor(ctx.allocator(), storage, t.shape);
        kernels::ConvertFromF32Parallel(ctx.num_threads(), target, x, o.owned.data(), static_cast<size_t>(n));
        back = Tensor(ctx.allocator(), DType::kF32, t.shape);
        kernels::ConvertToF32Parallel(ctx.num_threads(), target, o.owned.data(), static_cast<float*>(back.data()),
                                      static_cast<size_t>(n));
        stats.Merge(kernels::ComputeErrorStatsParallel(ctx.num_threads(), x, static_cast<const float*>(back.data()),
                                                       static_cast<size_t>(n)));
        o.dtype = storage;
        o.bytes = {static_cast<const uint8_t*>(o.owned.data()), o.owned.num_bytes()};
        ++rep.num_converted;
      }
    } else if (out_gguf && GetDTypeInfo(t.dtype).ggml_type < 0) {
      throw ConfigError(fmt::format("{}: tensor '{}': GGUF cannot hold dtype {}", out, t.name, DTypeName(t.dtype)));
    }
    rep.out_tensor_bytes += o.bytes.size();
    rep.in_tensor_bytes += t.data.size();
    done_in += t.data.size();
    outs.push_back(std::move(o));
    if (options.progress) options.progress(done_in, total_in, t.name);
  }
  rep.num_tensors = outs.size();

  if (out_gguf) {
    std::vector<io::GgufKv> kv = src.gguf()->metadata();
    for (auto& e : kv) {
      if (e.key != "general.file_type") continue;
      const uint32_t ft = options.dtype == DType::kF16    ? kFileTypeMostlyF16
                          : options.dtype == DType::kBF16 ? kFileTypeMostlyBF16
                                                          : kFileTypeAllF32;
      e.value = io::GgufValue{io::GgufType::kU32, uint64_t{ft}};
    }
    std::vector<io::GgufWriteTensor> wt;
    for (const auto& o : outs) wt.push_back({o.name, o.dtype, o.shape, o.bytes});
    io::WriteGguf(out, kv, wt);
  } else {
    std::map<std::string, std::string> meta;
    if (src.safetensors() != nullptr) meta = src.safetensors()->metadata();
    meta.emplace("format", "pt");  // transformers refuses safetensors files without it
    std::vector<io::SafetensorsWriteTensor> wt;
    for (const auto& o : outs) wt.push_back({o.name, o.dtype, o.shape, o.bytes});
    io::WriteSafetensors(out, wt, meta);
  }

  rep.out_file_bytes = static_cast<uint64_t>(fs::file_size(out, ec));
  rep.max_abs_error = stats.max_abs;
  rep.mean_abs_error = stats.count ? stats.sum_abs / static_cast<double>(stats.count) : 0.0;
  rep.max_rel_error = stats.max_rel;
  rep.num_nonfinite_out = stats.nonfinite;
  rep.peak_alloc_bytes = ctx.allocator().peak_bytes();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace nibble
