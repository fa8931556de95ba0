// nibble::Convert: float tensors of a model file to another float dtype, with the
// error each conversion introduced measured against the f32 source values.
#include "nibble/convert.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "api/model_loader.h"
#include "api/model_source.h"
#include "core/dtype.h"
#include "core/check.h"
#include "core/float_convert.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/convert.h"
#include "kernels/error_stats.h"
#include "kernels/nonfinite.h"
#include "nibble/error.h"
#include "io/atomic_writer.h"
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

// What happens to one tensor: its output dtype and whether its values change.
struct Plan {
  DType target;   // conversion target (tf32 stays tf32 here)
  DType storage;  // dtype written (tf32 is stored as f32)
  bool convert;   // false: the source bytes are copied unchanged
};

Plan PlanTensor(const SourceTensor& t, const ConvertOptions& o) {
  if (!IsConvertibleSource(t.dtype)) return {t.dtype, t.dtype, false};
  // llama.cpp keeps the RoPE frequency divisors (Llama 3.1 scaling) in f32 whatever the type.
  const bool keep_f32 = (o.keep_norms_f32 && IsNormName(t.name)) || t.name == "rope_freqs.weight";
  const DType target = keep_f32 ? DType::kF32 : o.dtype;
  const DType storage = target == DType::kTF32 ? DType::kF32 : target;
  return {target, storage, t.dtype != target};
}

// Converts one tensor into `out` (reallocated to fit) and merges the error it
// introduced into `stats`.
void ConvertTensor(ExecContext& ctx, const SourceTensor& t, const std::string& file, const Plan& plan, Tensor& out,
                   kernels::ErrorStats& stats) {
  const auto n = static_cast<size_t>(t.shape.NumElems());
  out = Tensor();  // free the previous tensor's bytes before allocating this one's
  if (plan.target == DType::kF32) {
    // Decoding to f32 is exact: the values are the source's (dequantized) values.
    const float* x = api::SourceAsF32(ctx, t, file, out);
    if (out.data() == nullptr) {  // the source was aligned f32 already (only for tf32 -> f32)
      out = Tensor(ctx.allocator(), DType::kF32, t.shape);
      std::memcpy(out.data(), x, n * sizeof(float));
    }
    stats.count += n;
    return;
  }
  Tensor scratch;
  const float* x = api::SourceAsF32(ctx, t, file, scratch);
  out = Tensor(ctx.allocator(), plan.storage, t.shape);
  kernels::ConvertFromF32Parallel(ctx.num_threads(), plan.target, x, out.data(), n);
  stats.Merge(kernels::ComputeRoundTripErrorParallel(ctx.num_threads(), plan.target, x, out.data(), n));
}

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

std::string RangeText(DType t) {
  switch (t) {
    case DType::kF16: return " (±65504)";
    case DType::kF8E4M3FN: return " (±448)";
    case DType::kF8E5M2: return " (±57344)";
    default: return "";
  }
}

// fp16's other pitfall: RMSNorm's epsilon below f16's smallest normal 2^-14 (≈ 6.1e-5) is a
// subnormal in f16, and below its smallest subnormal 2^-24 (≈ 6e-8) it flushes to 0, so a
// runtime that adds it in f16 loses it (an all-zero row then divides by zero). Names the
// field the file keeps it in.
std::optional<std::string> EpsWarning(const api::ModelSource& src) {
  model::LlamaConfig c;
  try {
    c = api::ConfigFromSource(src);
  } catch (const Error&) {
    return std::nullopt;  // not a Llama nibble knows: no epsilon to check
  }
  constexpr float kMinNormal = 6.103515625e-05f;  // 2^-14
  if (!(c.rms_norm_eps < kMinNormal)) return std::nullopt;
  const char* field = src.format() == api::FileFormat::kGguf     ? "GGUF key llama.attention.layer_norm_rms_epsilon"
                      : src.format() == api::FileFormat::kLlama2c ? "llama2.c's fixed epsilon"
                                                                  : "config.json field rms_norm_eps";
  const float in_f16 = F16ToF32(F32ToF16(c.rms_norm_eps));
  return fmt::format("rms_norm_eps {:g} ({}) is below f16's smallest normal 6.1e-05: {}", c.rms_norm_eps, field,
                     in_f16 == 0.0f ? std::string("in f16 it flushes to 0 (RMSNorm of an all-zero row divides by 0)")
                                    : fmt::format("in f16 it is the subnormal {:.5g} (runtimes that compute RMSNorm in "
                                                  "f16 lose its precision; nibble computes it in f32)",
                                                  in_f16));
}

}  // namespace

ConvertReport Convert(const std::string& in, const std::string& out, const ConvertOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string ext = fs::path(out).extension().string();
  const bool out_gguf = ext == ".gguf";
  if (!out_gguf && ext != ".safetensors")
    throw ConfigError(fmt::format("{}: output must end in .safetensors or .gguf, found '{}'", out, ext));
  std::error_code ec;
  io::CheckNotAnInput(out, {in});
  const io::Existing existing = options.overwrite ? io::Existing::kReplace : io::Existing::kRefuse;
  if (!options.overwrite && fs::symlink_status(out, ec).type() != fs::file_type::not_found)
    throw ConfigError(fmt::format("{}: already exists (pass --overwrite to replace it)", out));

  const api::ModelSource src = api::ModelSource::Open(in);
  CheckTarget(options, src.format(), out, out_gguf);

  ExecContext ctx(options.num_threads);
  ConvertReport rep;
  rep.in_format = std::string(api::FileFormatName(src.format()));
  rep.out_format = out_gguf ? "gguf" : "safetensors";
  rep.in_file_bytes = src.file_bytes();

  // Plan every tensor first (so the writer can lay out the header), then convert
  // each one only when the writer asks for its bytes: peak memory is one tensor's
  // output plus its f32 copies, not the whole model.
  // Buffers (llama2.c's RoPE tables) are derived data that no other tool expects.
  std::vector<SourceTensor> tensors;
  for (const SourceTensor& t : src.tensors())
    if (!t.is_buffer) tensors.push_back(t);
  std::vector<Plan> plans;
  plans.reserve(tensors.size());
  uint64_t total_in = 0;
  for (const SourceTensor& t : tensors) {
    const Plan p = PlanTensor(t, options);
    if (out_gguf && GetDTypeInfo(p.storage).ggml_type < 0)
      throw ConfigError(fmt::format("{}: tensor '{}': GGUF cannot hold dtype {}", out, t.name, DTypeName(p.storage)));
    plans.push_back(p);
    total_in += t.data.size();
    rep.in_tensor_bytes += t.data.size();
    rep.out_tensor_bytes += p.convert ? DTypeBytes(p.storage, static_cast<uint64_t>(t.shape.NumElems())) : t.data.size();
    rep.num_params += static_cast<uint64_t>(t.shape.NumElems());
    rep.num_converted += p.convert ? 1 : 0;
  }
  rep.num_tensors = tensors.size();
  io::CheckFreeSpace(out, rep.out_tensor_bytes, "the converted tensors");

  kernels::ErrorStats stats;
  Tensor current;  // the converted tensor being written
  uint64_t done_in = 0;
  auto producer = [&](size_t i) {
    return [&, i]() -> std::span<const uint8_t> {
      const SourceTensor& t = tensors[i];
      if (!options.allow_nonfinite && IsFloat(t.dtype) &&
          t.data.size() == DTypeBytes(t.dtype, static_cast<uint64_t>(t.shape.NumElems()))) {
        const int64_t bad = kernels::FindNonFinite(ctx.num_threads(), t.dtype, t.data.data(), t.shape.NumElems());
        if (bad >= 0) throw NonFiniteError(in, t.name, bad);
      }
      std::span<const uint8_t> bytes = t.data;
      if (plans[i].convert) {
        const uint64_t overflowed = stats.nonfinite;
        ConvertTensor(ctx, t, in, plans[i], current, stats);
        if (stats.nonfinite > overflowed)
          rep.warnings.push_back(fmt::format("tensor '{}': {} values beyond {}'s finite range{} became infinite or NaN",
                                             t.name, stats.nonfinite - overflowed, DTypeName(plans[i].storage),
                                             RangeText(plans[i].storage)));
        bytes = {static_cast<const uint8_t*>(current.data()), current.num_bytes()};
      }
      done_in += t.data.size();
      if (options.progress) options.progress(done_in, total_in, t.name);
      return bytes;
    };
  };

  if (options.dtype == DType::kF16) {
    if (std::optional<std::string> w = EpsWarning(src)) rep.warnings.push_back(*w);
  }
  if (out_gguf) {
    std::vector<io::GgufKv> kv = src.gguf()->metadata();
    for (auto& e : kv) {
      if (e.key != "general.file_type") continue;
      const uint32_t ft = options.dtype == DType::kF16    ? kFileTypeMostlyF16
                          : options.dtype == DType::kBF16 ? kFileTypeMostlyBF16
                                                          : kFileTypeAllF32;
      e.value.type = io::GgufType::kU32;
      e.value.value = uint64_t{ft};
    }
    std::vector<io::GgufWriteTensor> wt;
    for (size_t i = 0; i < tensors.size(); ++i)
      wt.push_back({tensors[i].name, plans[i].storage, tensors[i].shape, {}, producer(i)});
    io::WriteGguf(out, kv, wt, existing);
  } else {
    std::map<std::string, std::string> meta;
    if (src.safetensors() != nullptr) meta = src.safetensors()->metadata();
    meta.emplace("format", "pt");  // transformers refuses safetensors files without it
    std::vector<io::SafetensorsWriteTensor> wt;
    for (size_t i = 0; i < tensors.size(); ++i)
      wt.push_back({tensors[i].name, plans[i].storage, tensors[i].shape, {}, producer(i)});
    io::WriteSafetensors(out, wt, meta, existing);
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
