// nibble::Inspect: what a model file holds, in one ModelInfo.
#include <fmt/format.h>

#include <algorithm>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "api/model_loader.h"
#include "api/model_source.h"
#include "core/dtype.h"
#include "io/text_file.h"
#include "nibble/inspect.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;
using api::FileFormat;
using api::ModelSource;
using api::SourceTensor;

// llama2.c's run.c hard-codes these (rmsnorm eps and RoPE base).
constexpr double kLlama2cRmsEps = 1e-5;
constexpr double kLlama2cRopeTheta = 10000.0;

void AddLlama2cArchitecture(const io::Llama2cConfig& c, ModelInfo& info) {
  auto& a = info.architecture;
  a.emplace_back("model_type", "llama");
  a.emplace_back("hidden_size", fmt::to_string(c.dim));
  a.emplace_back("intermediate_size", fmt::to_string(c.hidden_dim));
  a.emplace_back("num_hidden_layers", fmt::to_string(c.n_layers));
  a.emplace_back("num_attention_heads", fmt::to_string(c.n_heads));
  a.emplace_back("num_key_value_heads", fmt::to_string(c.n_kv_heads));
  a.emplace_back("head_dim", fmt::to_string(c.dim / c.n_heads));
  a.emplace_back("vocab_size", fmt::to_string(c.vocab_size));
  a.emplace_back("max_position_embeddings", fmt::to_string(c.seq_len));
  a.emplace_back("rms_norm_eps", fmt::format("{:g}", kLlama2cRmsEps));
  a.emplace_back("rope_theta", fmt::format("{:g}", kLlama2cRopeTheta));
  a.emplace_back("tie_word_embeddings", c.shared_classifier ? "true" : "false");
}

void AddGgufArchitecture(const io::GgufFile& g, ModelInfo& info) {
  const io::GgufKv* arch_kv = g.FindKey("general.architecture");
  if (arch_kv == nullptr || arch_kv->value.type != io::GgufType::kString) return;
  const std::string arch = std::get<std::string>(arch_kv->value.value);
  info.architecture.emplace_back("model_type", arch);
  auto has = [&](std::string_view k) {
    return std::any_of(info.architecture.begin(), info.architecture.end(), [&](const auto& p) { return p.first == k; });
  };
  // GGUF key suffix -> Hugging Face config field.
  static constexpr std::pair<std::string_view, std::string_view> kMap[] = {
      {"embedding_length", "hidden_size"},
      {"feed_forward_length", "intermediate_size"},
      {"block_count", "num_hidden_layers"},
      {"attention.head_count", "num_attention_heads"},
      {"attention.head_count_kv", "num_key_value_heads"},
      {"attention.key_length", "head_dim"},
      {"vocab_size", "vocab_size"},
      {"context_length", "max_position_embeddings"},
      {"attention.layer_norm_rms_epsilon", "rms_norm_eps"},
      {"rope.freq_base", "rope_theta"},
      {"rope.dimension_count", "rope_dimension_count"},
  };
  for (const auto& [suffix, hf] : kMap) {
    if (const io::GgufKv* kv = g.FindKey(arch + "." + std::string(suffix)))
      info.architecture.emplace_back(std::string(hf), api::GgufValueToString(kv->value));
  }
  if (!has("vocab_size")) {
    if (const io::GgufKv* kv = g.FindKey("tokenizer.ggml.tokens"); kv && kv->value.type == io::GgufType::kArray)
      info.architecture.emplace_back("vocab_size",
                                     fmt::to_string(std::get<io::GgufArray>(kv->value.value).items.size()));
  }
  // head_dim defaults to hidden_size / num_attention_heads, as in transformers.
  const io::GgufKv* hidden = g.FindKey(arch + ".embedding_length");
  const io::GgufKv* heads = g.FindKey(arch + ".attention.head_count");
  if (!has("head_dim") && hidden && heads && hidden->value.type == io::GgufType::kU32 &&
      heads->value.type == io::GgufType::kU32) {
    const uint64_t h = std::get<uint64_t>(hidden->value.value), n = std::get<uint64_t>(heads->value.value);
    if (n != 0) info.architecture.emplace_back("head_dim", fmt::to_string(h / n));
  }
  const bool tied = g.FindTensor("output.weight") == nullptr;
  info.architecture.emplace_back("tie_word_embeddings", tied ? "true" : "false");
}

// config.json next to a safetensors checkpoint: the architecture fields users know.
void AddHfConfig(const std::string& path, ModelInfo& info) {
  fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  const fs::path cfg = dir / "config.json";
  const std::optional<nlohmann::json> parsed = io::ReadJsonObjectIfExists(cfg.string(), "config.json");
  if (!parsed) return;
  const nlohmann::json& j = *parsed;
  static constexpr std::string_view kFields[] = {
      "model_type", "architectures", "hidden_size", "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings",
      "rms_norm_eps", "rope_theta", "rope_scaling", "tie_word_embeddings", "torch_dtype", "quantization_config"};
  for (std::string_view k : kFields) {
    auto it = j.find(std::string(k));
    if (it == j.end() || it->is_null()) continue;
    info.architecture.emplace_back(std::string(k), it->is_string() ? it->get<std::string>() : it->dump());
  }
}

// A quantized checkpoint's Linear weights are packed codes plus scales, maps and a JSON
// state: count each as the parameters of its unquantized shape, its pieces as storage only.
void CountQuantizedParams(const ModelSource& src, ModelInfo& info) {
  const auto qc = api::QuantConfigFromSource(src);
  if (!qc) return;
  std::map<std::string, const SourceTensor*, std::less<>> by_name;
  for (const SourceTensor& t : src.tensors()) by_name[t.name] = &t;
  const io::RawLookup raw = [&](std::string_view name) -> std::optional<io::RawTensor> {
    auto it = by_name.find(name);
    if (it == by_name.end()) return std::nullopt;
    return io::RawTensor{it->second->dtype, it->second->shape, it->second->data};
  };
  Allocator alloc;
  for (const SourceTensor& t : src.tensors()) {
    if (!t.name.ends_with(".weight")) continue;
    const std::string prefix = t.name.substr(0, t.name.size() - 7);
    if (!io::IsQuantizedLinear(raw, prefix)) continue;
    const quant::QTensor q = io::ReadQuantizedLinear(raw, prefix, src.path(), *qc, alloc);
    for (const SourceTensor& piece : src.tensors())
      if (piece.name.starts_with(prefix + ".weight") || piece.name == prefix + ".SCB")
        info.num_params -= static_cast<uint64_t>(piece.shape.NumElems());
    info.num_params += static_cast<uint64_t>(q.NumElems());
  }
}

}  // namespace

ModelInfo Inspect(const std::string& path) {
  const ModelSource src = ModelSource::Open(path);
  ModelInfo info;
  info.path = path;
  info.format = std::string(api::FileFormatName(src.format()));
  info.file_bytes = src.file_bytes();
  for (const auto& t : src.tensors()) {
    TensorInfo ti;
    ti.name = t.name;
    ti.dtype = t.dtype;
    ti.shape.assign(t.shape.dims().begin(), t.shape.dims().end());
    ti.num_elems = static_cast<uint64_t>(t.shape.NumElems());
    ti.num_bytes = t.data.size();
    info.tensor_bytes += ti.num_bytes;
    if (!t.is_buffer) {
      info.num_params += ti.num_elems;
      info.param_bytes += ti.num_bytes;
    }
    info.tensors.push_back(std::move(ti));
  }
  CountQuantizedParams(src, info);
  switch (src.format()) {
    case FileFormat::kGguf: {
      const io::GgufFile& g = *src.gguf();
      info.format_version = fmt::format("v{}", g.version());
      for (const auto& kv : g.metadata())
        info.metadata.push_back({kv.key, api::GgufValueTypeName(kv.value), api::GgufValueToString(kv.value)});
      AddGgufArchitecture(g, info);
      break;
    }
    case FileFormat::kSafetensors: {
      const auto& st = *src.safetensors();
      info.format_version = st.index_path().empty() ? "1 file" : fmt::format("{} shards", st.shards().size());
      for (const auto& [k, v] : st.metadata()) info.metadata.push_back({k, "string", v});
      AddHfConfig(path, info);
      break;
    }
    case FileFormat::kLlama2c: {
      info.format_version = "legacy";
      AddLlama2cArchitecture(src.llama2c()->config(), info);
      break;
    }
  }
  return info;
}

std::string ModelInfoToJson(const ModelInfo& info) {
  nlohmann::ordered_json j;
  j["path"] = info.path;
  j["format"] = info.format;
  j["format_version"] = info.format_version;
  j["file_bytes"] = info.file_bytes;
  j["tensor_bytes"] = info.tensor_bytes;
  j["param_bytes"] = info.param_bytes;
  j["num_params"] = info.num_params;
  j["bytes_per_param"] = info.BytesPerParam();
  auto& arch = j["architecture"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : info.architecture) arch[k] = v;
  auto& meta = j["metadata"] = nlohmann::ordered_json::array();
  for (const auto& m : info.metadata) meta.push_back({{"key", m.key}, {"type", m.type}, {"value", m.value}});
  auto& tensors = j["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : info.tensors)
    tensors.push_back({{"name", t.name},
                       {"dtype", DTypeName(t.dtype)},
                       {"shape", t.shape},
                       {"num_elems", t.num_elems},
                       {"num_bytes", t.num_bytes}});
  // Invalid UTF-8 can only come from safetensors metadata we did not validate; replace it.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}


}  // namespace nibble
