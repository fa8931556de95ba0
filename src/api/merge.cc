// nibble::Merge: base weights into one f32 buffer by role, every adapter's s·B·A added
// (peft::LoraModel::Merge), the result written as a Hugging Face directory.
#include <fmt/format.h>

#include <chrono>
#include <random>
#include <filesystem>

#include "api/adapter.h"
#include "api/hf_dir.h"
#include "api/model_loader.h"
#include "core/exec_context.h"
#include "kernels/convert.h"
#include "nibble/error.h"
#include "io/atomic_writer.h"
#include "nibble/finetune.h"
#include "nibble/quantize.h"
#include "quant/qtensor.h"

namespace nibble {
namespace fs = std::filesystem;

namespace {

std::string QuantName(const std::optional<io::QuantizationConfig>& q) {
  if (!q) return "quantized at load";
  switch (q->kind) {
    case io::QuantizationConfig::Kind::kBnb4bit:
      return fmt::format("bitsandbytes 4-bit {}{}", q->bnb_4bit_quant_type,
                         q->bnb_4bit_use_double_quant ? " with double quantization" : "");
    case io::QuantizationConfig::Kind::kBnb8bit: return "bitsandbytes LLM.int8()";
    case io::QuantizationConfig::Kind::kNibble: return "nibble " + q->nibble_method;
  }
  return "quantized";
}

}  // namespace

MergeReport Merge(const MergeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.model_path.empty()) throw ConfigError("merge: option 'model' (-m) is required");
  if (o.adapter_path.empty()) throw ConfigError("merge: option 'adapter' (-a) is required");
  if (o.out_dir.empty()) throw ConfigError("merge: option 'out' (-o) is required");
  if (o.format == "gguf")
    throw ConfigError("merge --format gguf: not yet; write --format hf and convert it (GGUF export comes with the "
                      "GGUF writer's export issue)");
  if (o.format != "hf") throw ConfigError(fmt::format("merge --format: expected hf, got \"{}\"", o.format));
  const DType dtype = o.dtype == "f32" ? DType::kF32 : o.dtype == "bf16" ? DType::kBF16 : o.dtype == "f16" ? DType::kF16
                                                                                                          : DType::kU8;
  if (dtype == DType::kU8) throw ConfigError(fmt::format("merge --dtype: expected f32, bf16 or f16, got \"{}\"", o.dtype));
  if (o.num_threads != 0) CheckThreadCount(o.num_threads, "num_threads");
  if (!fs::exists(fs::path(o.adapter_path) / "adapter_config.json"))
    throw ConfigError(fmt::format("{}: no adapter_config.json (give a PEFT adapter directory)", o.adapter_path));

  ExecContext ctx(o.num_threads);
  api::LoadOptions lo;
  lo.weights = WeightDtype::kF32;
  lo.tokenizer_path = o.tokenizer_path;
  // An HF checkpoint without tokenizer files merges without them.
  const fs::path src(o.model_path);
  const fs::path src_dir = fs::is_directory(src) ? src : src.parent_path();
  if (o.tokenizer_path.empty() && fs::exists(src_dir / "config.json") && !fs::exists(src_dir / "tokenizer.json") &&
      !fs::exists(src_dir / "tokenizer.model"))
    lo.load_tokenizer = false;
  auto m = api::LoadModel(o.model_path, lo, ctx);
  MergeReport r;
  const auto adapter = api::AttachLoraAdapter(*m, o.adapter_path, &r.warnings);
  // With --quantize the merged model goes to a temporary first (named as the atomic writers
  // name theirs, so a killed run's is removed by the next), then Quantize writes OUT.
  const bool requant = !o.quantize.empty();
  if (requant && dtype != DType::kF32)
    throw ConfigError("merge: --quantize quantizes the f32 merge; leave --dtype at f32 (the unquantized tensors are "
                      "written as --quantize's own default)");
  const std::string dest = requant ? io::TempNameFor(o.out_dir, std::random_device{}()) : o.out_dir;
  if (requant && fs::exists(o.out_dir) && !o.overwrite)
    throw ConfigError(fmt::format("{}: exists; pass --overwrite to replace it", o.out_dir));
  api::HfDirWriter out(dest, o.overwrite && !requant, {o.model_path, o.adapter_path});

  // Every weight as f32 under its HF name; quantized Linears dequantized.
  const model::LlamaConfig& c = m->config;
  model::LlamaWeights w = m->model->weights();
  model::ParamIndex index;
  std::vector<model::RoleAt> roles;
  model::ForEachRole(c, [&](const model::RoleAt& ra) {
    index.Add(ra.HfName(), ra.role->ShapeIn(c), ra.role->is_matrix());
    roles.push_back(ra);
  });
  std::vector<float> params(index.total());
  bool dequantized = false;
  for (size_t i = 0; i < roles.size(); ++i) {
    const model::ParamEntry& e = index.entries()[i];
    const model::LinearWeight* lin = roles[i].Linear(w);
    float* dst = params.data() + e.offset;
    if (lin != nullptr && lin->q != nullptr) {
      quant::DequantizeMatrix(*lin->q, dst, ctx.num_threads());
      dequantized = true;
    } else {
      const ConstTensorView& v = lin != nullptr ? lin->dense : *roles[i].View(w);
      kernels::ConvertToF32Parallel(ctx.num_threads(), v.dtype, v.data, dst, e.count);
    }
  }
  if (dequantized)
    r.warnings.push_back(fmt::format("{}: the base is quantized ({}): its weights were dequantized before the merge, so "
                                     "the merged weights keep the base's quantization error; quantizing the result "
                                     "again (nibble quantize) rounds a second time",
                                     o.model_path, QuantName(m->quant_config)));
  // W += s·B·A for every adapter, into its role's entry.
  const auto& targets = adapter->lora->targets();
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string name = targets[i].HfName();
    const model::ParamEntry* e = nullptr;
    for (const model::ParamEntry& x : index.entries())
      if (x.name == name) e = &x;
    if (e == nullptr) throw ConfigError(fmt::format("merge: no weight '{}' in {}", name, o.model_path));
    peft::LoraModel::Merge(*adapter->lora->adapters()[i], params.data() + e->offset);
    ++r.merged_modules;
  }
  r.params = index.num_params();
  api::WriteHfModel(out, *m, index, params.data(), dtype);
  r.files = out.Commit();
  if (requant) {
    QuantizeOptions q;
    q.method = o.quantize;
    q.double_quant = o.double_quant;
    q.overwrite = o.overwrite;
    q.num_threads = o.num_threads;
    QuantizeReport qr;
    try {
      qr = Quantize(dest, o.out_dir, q);
    } catch (...) {
      io::RemoveOutputDir(dest);
      throw;
    }
    io::RemoveOutputDir(dest);
    r.files = qr.files;
    r.requant_rms_error = qr.rms_error;
    r.requant_max_error = qr.max_abs_error;
    r.warnings.push_back(fmt::format("--quantize {}: the merged weights were rounded to {} again: RMS error {:.3g}, max "
                                     "{:.3g} against the merged f32 weights{}",
                                     o.quantize, o.quantize, qr.rms_error, qr.max_abs_error,
                                     dequantized ? ", on top of the base's own quantization error" : ""));
  }
  r.out_bytes = static_cast<uint64_t>(fs::file_size(fs::path(o.out_dir) / "model.safetensors"));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace nibble
