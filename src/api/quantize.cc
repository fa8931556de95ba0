// nibble::Quantize (and export with method "none"): any model nibble reads -> a Hugging
// Face directory whose Linear weights are quantized in the bitsandbytes layout (spec
// bnb-compatible-quantization.md §6) or nibble's; Q/K rows moved to HF's rotate-half order.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "api/hf_dir.h"
#include "api/model_loader.h"
#include "api/model_source.h"
#include "core/exec_context.h"
#include "core/float_convert.h"
#include "io/bnb_checkpoint.h"
#include "io/atomic_writer.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "kernels/convert.h"
#include "kernels/nonfinite.h"
#include "nibble/error.h"
#include "nibble/quantize.h"
#include "quant/qtensor.h"
#include "quant/registry.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;
using api::FileFormat;
using api::SourceTensor;

// The source values of `t` as an f32 copy (quantize permutes Q/K rows in place).
std::vector<float> SourceF32(ExecContext& ctx, const SourceTensor& t, const std::string& file) {
  Tensor scratch;
  const float* v = api::SourceAsF32(ctx, t, file, scratch);
  return {v, v + t.shape.NumElems()};
}

DType ParseOutDtype(std::string_view s, std::string_view what) {
  if (s == "f32" || s == "float32") return DType::kF32;
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  if (s == "f16" || s == "float16") return DType::kF16;
  throw ConfigError(fmt::format("{}: expected auto, f32, bf16 or f16, got \"{}\"", what, s));
}

struct OutTensor {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> Encode(const std::vector<float>& v, DType dt) {
  std::vector<uint8_t> out(DTypeBytes(dt, v.size()));
  if (dt == DType::kF32) {
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    kernels::ConvertFromF32Parallel(1, dt, v.data(), out.data(), v.size());
  }
  return out;
}

}  // namespace

QuantizeReport Quantize(const std::string& in, const std::string& out, const QuantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ExecContext ctx(o.num_threads);
  QuantizeReport r;
  // ---- options ----
  const bool export_only = o.method == "none";
  quant::QuantizeSpec spec;
  if (!export_only) {
    const auto m = quant::ParseMethod(o.method);
    if (!m)
      throw ConfigError(fmt::format(
          "--method: expected nf4, fp4, int8, int8-absmax, int8-zeropoint, int4 or none, got \"{}\"", o.method));
    spec.method = *m;
    spec.blocksize = o.blocksize;
    spec.double_quant = o.double_quant;
    spec.threshold = static_cast<float>(o.threshold);
    const bool four = spec.method == quant::QuantMethod::kNf4 || spec.method == quant::QuantMethod::kFp4 ||
                      spec.method == quant::QuantMethod::kInt4;
    if (o.double_quant && spec.method != quant::QuantMethod::kNf4 && spec.method != quant::QuantMethod::kFp4)
      throw ConfigError(fmt::format("--double-quant applies to nf4 and fp4, not {}", o.method));
    if (four && (o.blocksize < 32 || o.blocksize > 4096 || (o.blocksize & (o.blocksize - 1)) != 0))
      throw ConfigError(fmt::format("--blocksize: {} needs a power of two in [32, 4096], got {}", o.method, o.blocksize));
    if (!four && o.blocksize < -1) throw ConfigError(fmt::format("--blocksize: expected -1, 0 or > 0, got {}", o.blocksize));
    if (!(o.threshold >= 0.0) || !std::isfinite(o.threshold))
      throw ConfigError(fmt::format("--threshold: expected a finite value >= 0, got {}", o.threshold));
  }
  const quant::ComputeDtype compute = quant::ParseComputeDtype(o.compute_dtype, "--compute-dtype");
  spec.compute = compute;

  // ---- source ----
  const api::ModelSource src = api::ModelSource::Open(in);
  r.in_format = std::string(api::FileFormatName(src.format()));
  r.in_file_bytes = src.file_bytes();
  if (api::QuantConfigFromSource(src))
    throw ConfigError(fmt::format("{}: already quantized (config.json has a quantization_config); run nibble "
                                  "dequantize first",
                                  in));
  model::LlamaConfig cfg = api::ConfigFromSource(src);
  cfg.Validate();
  std::optional<tokenizer::Vocab> vocab;
  if (src.format() == FileFormat::kGguf) {
    vocab = api::VocabFromGguf(*src.gguf());
  } else if (src.format() == FileFormat::kLlama2c) {
    vocab = api::VocabFromFile(api::FindDefaultTokenizer(in), cfg.vocab_size);
  } else {
    try {
      vocab = api::VocabFromFile(api::FindHfTokenizer(in), cfg.vocab_size);
    } catch (const ConfigError&) {
      // An HF directory without tokenizer files exports without them.
    }
  }

  // Output dtype of the tensors that stay dense.
  DType dense = DType::kF32;
  if (o.dtype == "auto") {
    bool all_bf16 = true, all_f16 = true, any = false;
    for (const SourceTensor& t : src.tensors()) {
      if (t.is_buffer || !IsFloat(t.dtype)) continue;
      any = true;
      all_bf16 &= t.dtype == DType::kBF16;
      all_f16 &= t.dtype == DType::kF16;
    }
    dense = any && all_bf16 ? DType::kBF16 : (any && all_f16 ? DType::kF16 : DType::kF32);
  } else {
    dense = ParseOutDtype(o.dtype, "--dtype");
  }

  // ---- tensors by HF name, in a stable order ----
  std::map<std::string, const SourceTensor*> by_name;
  for (const SourceTensor& t : src.tensors()) {
    if (t.is_buffer) continue;
    const std::string name = src.format() == FileFormat::kGguf ? api::GgufToHfName(t.name) : t.name;
    if (name == "rope_freqs.weight")
      throw ConfigError(fmt::format("{}: tensor 'rope_freqs.weight' (Llama 3.1 RoPE divisors) cannot be exported to "
                                    "a Hugging Face config",
                                    in));
    if (!name.starts_with("model.") && !name.starts_with("lm_head."))
      throw ConfigError(fmt::format("{}: tensor '{}' has no Hugging Face Llama name", in, t.name));
    by_name[name] = &t;
  }
  std::map<std::string, bool> quantize_it;
  if (!export_only) {
    for (const std::string& name : api::LinearWeightNames(cfg)) {
      const std::string module = name.substr(0, name.size() - 7);
      if (by_name.count(name) && !io::SkippedModule(module, o.skip_modules)) quantize_it[name] = true;
    }
  }
  const bool meta_rope = cfg.rope_layout == kernels::RopeLayout::kAdjacentPairs;
  const int64_t Dh = cfg.HeadDim();

  // ---- the output, before any work: an existing OUT or a full disk fails now ----
  api::HfDirWriter dir(out, o.overwrite, {in});
  uint64_t planned = 0;  // tensor bytes without scales: a lower bound of model.safetensors
  for (const auto& [name, t] : by_name) {
    const auto n = static_cast<uint64_t>(t->shape.NumElems());
    if (quantize_it.count(name)) {
      const bool four = spec.method == quant::QuantMethod::kNf4 || spec.method == quant::QuantMethod::kFp4 ||
                        spec.method == quant::QuantMethod::kInt4;
      planned += four ? (n + 1) / 2 : n;
    } else {
      planned += DTypeBytes(IsFloat(t->dtype) || quant::FindFormat(t->dtype) ? dense : t->dtype, n);
    }
  }
  io::CheckFreeSpace(out, planned, "model.safetensors");

  Allocator& alloc = ctx.allocator();
  std::vector<std::unique_ptr<quant::QTensor>> qtensors;
  std::vector<OutTensor> dense_out;
  std::vector<io::SafetensorsWriteTensor> writes;
  std::vector<std::vector<uint8_t>> strings;
  double err_sum = 0, err_sq = 0;
  uint64_t done = 0;
  for (const auto& [name, t] : by_name) {
    std::vector<float> v = SourceF32(ctx, *t, in);
    if (!o.allow_nonfinite && !quantize_it.count(name)) {
      const int64_t bad = kernels::FindNonFinite(ctx.num_threads(), DType::kF32, v.data(), static_cast<int64_t>(v.size()));
      if (bad >= 0) throw NonFiniteError(in, name, bad);
    }
    if (meta_rope && t->shape.rank() >= 1) {
      const int64_t cols = t->shape.rank() == 2 ? t->shape.dims()[1] : 1;
      if (name.find("self_attn.q_proj.") != std::string::npos)
        api::PermuteMetaToHf(v.data(), cfg.num_attention_heads, Dh, cols);
      if (name.find("self_attn.k_proj.") != std::string::npos)
        api::PermuteMetaToHf(v.data(), cfg.num_key_value_heads, Dh, cols);
    }
    r.num_params += static_cast<uint64_t>(t->shape.NumElems());
    ++r.num_tensors;
    if (quantize_it.count(name)) {
      for (size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i]))
          throw ConfigError(fmt::format("{}: tensor '{}': element {} is {}; refusing to quantize non-finite weights",
                                        in, name, i, v[i]));
        if (spec.method == quant::QuantMethod::kLlmInt8 && std::fabs(v[i]) > 65504.0f)
          throw ConfigError(fmt::format("{}: tensor '{}': element {} = {} overflows fp16 (LLM.int8() rounds weights "
                                        "to fp16 first)",
                                        in, name, i, v[i]));
      }
      const DType rec = t->dtype == DType::kBF16 || t->dtype == DType::kF16 ? t->dtype : DType::kF32;
      qtensors.push_back(
          std::make_unique<quant::QTensor>(quant::QuantizeMatrix(alloc, v.data(), t->shape, rec, spec, ctx.num_threads())));
      const quant::QTensor& q = *qtensors.back();
      std::vector<float> back(v.size());
      quant::DequantizeMatrix(q, back.data(), ctx.num_threads());
      for (size_t i = 0; i < v.size(); ++i) {
        const double e = std::fabs(static_cast<double>(v[i]) - back[i]);
        r.max_abs_error = std::max(r.max_abs_error, e);
        err_sum += e;
        err_sq += e * e;
      }
      ++r.num_quantized;
      r.quantized_params += v.size();
      r.quantized_bytes += q.StorageBytes();
    } else {
      const DType dt = IsFloat(t->dtype) || quant::FindFormat(t->dtype) ? dense : t->dtype;
      dense_out.push_back({name, dt, t->shape, Encode(v, dt)});
      r.dense_bytes += dense_out.back().bytes.size();
    }
    if (o.progress) o.progress(++done, by_name.size(), name);
  }
  if (r.quantized_params > 0) {
    r.mean_abs_error = err_sum / static_cast<double>(r.quantized_params);
    r.rms_error = std::sqrt(err_sq / static_cast<double>(r.quantized_params));
  }
  // Tensors in name order; a quantized Linear's pieces stay together (spec §6.3 shards rule).
  strings.reserve(qtensors.size() * 2);
  size_t qi = 0;
  size_t di = 0;
  for (const auto& [name, t] : by_name) {
    if (quantize_it.count(name)) {
      io::AppendQuantizedTensors(name.substr(0, name.size() - 7), *qtensors[qi++], writes, strings);
    } else {
      const OutTensor& d = dense_out[di++];
      writes.push_back({d.name, d.dtype, d.shape, d.bytes});
    }
  }

  // ---- the directory ----
  io::WriteSafetensors(dir.File("model.safetensors"), writes, {{"format", "pt"}}, io::Existing::kRefuse);
  const std::string torch_dtype = dense == DType::kBF16 ? "bfloat16" : (dense == DType::kF16 ? "float16" : "float32");
  nlohmann::json config;
  if (src.format() == FileFormat::kSafetensors) {
    const fs::path d = fs::is_directory(in) ? fs::path(in) : fs::path(in).parent_path();
    config = io::ReadJsonObject((d / "config.json").string(), "config.json");
    config["torch_dtype"] = torch_dtype;
    config.erase("dtype");
  } else {
    config = api::LlamaConfigToHfJson(cfg, torch_dtype, vocab ? &*vocab : nullptr);
  }
  if (!export_only) {
    io::QuantizationConfig qc;
    if (spec.method == quant::QuantMethod::kNf4 || spec.method == quant::QuantMethod::kFp4) {
      qc.kind = io::QuantizationConfig::Kind::kBnb4bit;
      qc.bnb_4bit_quant_type = std::string(quant::MethodName(spec.method));
      qc.bnb_4bit_use_double_quant = spec.double_quant;
    } else if (spec.method == quant::QuantMethod::kLlmInt8) {
      qc.kind = io::QuantizationConfig::Kind::kBnb8bit;
      qc.llm_int8_threshold = o.threshold;
    } else {
      qc.kind = io::QuantizationConfig::Kind::kNibble;
      qc.nibble_method = std::string(quant::MethodName(spec.method));
      qc.nibble_blocksize = spec.blocksize;
    }
    qc.bnb_4bit_compute_dtype = compute;
    qc.llm_int8_skip_modules = o.skip_modules;
    config["quantization_config"] = io::QuantizationConfigToJson(qc);
  }
  dir.WriteText("config.json", config.dump(2) + "\n");
  api::WriteTokenizerFiles(dir, src, vocab ? &*vocab : nullptr, cfg.max_position_embeddings);
  r.files = dir.Commit();
  r.files.insert(r.files.begin(), "model.safetensors");
  r.out_file_bytes = fs::file_size(fs::path(out) / "model.safetensors");
  r.peak_alloc_bytes = alloc.peak_bytes();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace nibble
