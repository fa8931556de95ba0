// nibble::Dequantize: a quantized Hugging Face checkpoint (bitsandbytes 4/8-bit or
// nibble formats) back to a plain one (spec bnb-compatible-quantization.md §6.6):
// every quantized Linear becomes `P.weight` in its recorded dtype (or --dtype), its
// auxiliary tensors are dropped, config.json loses quantization_config.
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "api/hf_dir.h"
#include "api/model_loader.h"
#include "api/model_source.h"
#include "core/exec_context.h"
#include "io/bnb_checkpoint.h"
#include "io/atomic_writer.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "kernels/convert.h"
#include "nibble/error.h"
#include "nibble/quantize.h"
#include "quant/qtensor.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;

DType DequantDtype(std::string_view s) {
  if (s == "f32" || s == "float32") return DType::kF32;
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  if (s == "f16" || s == "float16") return DType::kF16;
  throw ConfigError(fmt::format("--dtype: expected auto, f32, bf16 or f16, got \"{}\"", s));
}

}  // namespace

QuantizeReport Dequantize(const std::string& in, const std::string& out, const DequantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ExecContext ctx(o.num_threads);
  QuantizeReport r;
  const api::ModelSource src = api::ModelSource::Open(in);
  r.in_format = std::string(api::FileFormatName(src.format()));
  r.in_file_bytes = src.file_bytes();
  const auto qc = api::QuantConfigFromSource(src);
  if (!qc) throw ConfigError(fmt::format("{}: not a quantized checkpoint (config.json has no quantization_config)", in));
  const bool keep_dtype = o.dtype == "auto";
  const DType want = keep_dtype ? DType::kF32 : DequantDtype(o.dtype);
  model::LlamaConfig cfg = api::ConfigFromSource(src);
  std::map<std::string, const api::SourceTensor*, std::less<>> by_name;
  for (const api::SourceTensor& t : src.tensors()) by_name[t.name] = &t;
  const io::RawLookup raw = [&](std::string_view name) -> std::optional<io::RawTensor> {
    auto it = by_name.find(name);
    if (it == by_name.end()) return std::nullopt;
    return io::RawTensor{it->second->dtype, it->second->shape, it->second->data};
  };
  // Quantized Linears and every tensor name that belongs to them.
  std::map<std::string, quant::QTensor> quantized;  // by weight name
  std::set<std::string> consumed;
  for (const std::string& name : api::LinearWeightNames(cfg)) {
    const std::string prefix = name.substr(0, name.size() - 7);
    if (!io::IsQuantizedLinear(raw, prefix)) continue;
    quantized.emplace(name, io::ReadQuantizedLinear(raw, prefix, in, *qc, ctx.allocator()));
    for (const auto& [n, t] : by_name)
      if (n.starts_with(prefix + ".weight") || n == prefix + ".SCB") consumed.insert(n);
  }
  // The output, before any work: an existing OUT or a full disk fails now.
  api::HfDirWriter dir(out, o.overwrite, {in});
  uint64_t planned = 0;
  for (const auto& [name, t] : by_name) {
    if (auto it = quantized.find(name); it != quantized.end()) {
      planned += DTypeBytes(keep_dtype ? it->second.dtype : want, static_cast<uint64_t>(it->second.NumElems()));
    } else if (!consumed.count(name)) {
      planned += DTypeBytes(!keep_dtype && IsFloat(t->dtype) ? want : t->dtype, static_cast<uint64_t>(t->shape.NumElems()));
    }
  }
  io::CheckFreeSpace(out, planned, "model.safetensors");
  std::vector<std::vector<uint8_t>> storage;
  storage.reserve(by_name.size());
  std::vector<io::SafetensorsWriteTensor> writes;
  DType torch_dtype = DType::kF32;
  uint64_t done = 0;
  for (const auto& [name, t] : by_name) {
    if (auto it = quantized.find(name); it != quantized.end()) {
      const quant::QTensor& q = it->second;
      const DType dt = keep_dtype ? q.dtype : want;
      torch_dtype = dt;
      std::vector<float> v(static_cast<size_t>(q.NumElems()));
      quant::DequantizeMatrix(q, v.data(), ctx.num_threads());
      storage.emplace_back(DTypeBytes(dt, v.size()));
      kernels::ConvertFromF32Parallel(ctx.num_threads(), dt, v.data(), storage.back().data(), v.size());
      writes.push_back({name, dt, q.shape, storage.back()});
      r.num_params += v.size();
      ++r.num_quantized;
      r.quantized_params += v.size();
      r.quantized_bytes += q.StorageBytes();
    } else if (consumed.count(name)) {
      continue;
    } else {
      const DType dt = !keep_dtype && IsFloat(t->dtype) ? want : t->dtype;
      if (dt != t->dtype) {
        std::vector<float> v(static_cast<size_t>(t->shape.NumElems()));
        if (t->data.size() != DTypeBytes(t->dtype, v.size()))
          throw FormatError(fmt::format("{}: tensor '{}': {} bytes for shape {}", in, name, t->data.size(),
                                        t->shape.ToString()));
        kernels::ConvertToF32Parallel(ctx.num_threads(), t->dtype, t->data.data(), v.data(), v.size());
        storage.emplace_back(DTypeBytes(dt, v.size()));
        kernels::ConvertFromF32Parallel(ctx.num_threads(), dt, v.data(), storage.back().data(), v.size());
        writes.push_back({name, dt, t->shape, storage.back()});
      } else {
        writes.push_back({name, t->dtype, t->shape, t->data});
      }
      r.num_params += static_cast<uint64_t>(t->shape.NumElems());
      r.dense_bytes += writes.back().data.size();
    }
    ++r.num_tensors;
    if (o.progress) o.progress(++done, by_name.size(), name);
  }
  io::WriteSafetensors(dir.File("model.safetensors"), writes, {{"format", "pt"}}, io::Existing::kRefuse);
  const fs::path d = fs::is_directory(in) ? fs::path(in) : fs::path(in).parent_path();
  nlohmann::json config = io::ReadJsonObject((d / "config.json").string(), "config.json");
  config.erase("quantization_config");
  config.erase("dtype");
  config["torch_dtype"] = torch_dtype == DType::kBF16 ? "bfloat16" : (torch_dtype == DType::kF16 ? "float16" : "float32");
  dir.WriteText("config.json", config.dump(2) + "\n");
  api::WriteTokenizerFiles(dir, src, nullptr, cfg.max_position_embeddings);
  r.files = dir.Commit();
  r.files.insert(r.files.begin(), "model.safetensors");
  r.out_file_bytes = fs::file_size(fs::path(out) / "model.safetensors");
  r.peak_alloc_bytes = ctx.allocator().peak_bytes();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace nibble
