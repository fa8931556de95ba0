// nibble::EstimateMemory and the estimator's view of a checkpoint's storage.
#include "api/memory_estimate.h"

#include <fmt/format.h>

#include <filesystem>

#include "api/model_loader.h"
#include "api/finetune_options.h"
#include "core/exec_context.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "quant/registry.h"

namespace nibble::api {
namespace {

const SourceTensor* Find(const ModelSource& src, std::string_view hf_name) {
  for (const SourceTensor& t : src.tensors())
    if (GgufToHfName(t.name) == hf_name) return &t;
  return nullptr;
}

}  // namespace

train::EstimateOptions EstimateOptionsFor(const FinetuneOptions& o, const ModelSource* src,
                                          const std::string& torch_dtype, int threads, std::string* storage) {
  train::EstimateOptions e;
  e.train = TrainConfigFrom(o);
  e.threads = threads;
  std::optional<io::QuantizationConfig> qc = src != nullptr ? QuantConfigFromSource(*src) : std::nullopt;
  // The dense dtype of the Linear weights and of the rest, as the loader keeps them
  // (bf16 stays bf16; f32 is mapped; f16 and GGUF blocks are widened to f32 at load).
  DType linear = DType::kF32, dense = DType::kF32;
  if (src != nullptr) {
    if (const SourceTensor* t = Find(*src, "model.layers.0.self_attn.q_proj.weight")) linear = t->dtype;
    if (const SourceTensor* t = Find(*src, "model.embed_tokens.weight")) dense = t->dtype;
  } else {
    linear = dense = torch_dtype == "bfloat16" ? DType::kBF16 : torch_dtype == "float16" ? DType::kF16 : DType::kF32;
  }
  e.linears = linear == DType::kBF16 ? train::BaseStorage::kBf16 : train::BaseStorage::kF32;
  e.dense_bytes = dense == DType::kBF16 ? 2 : 4;
  e.base_converted_at_load = (linear != DType::kF32 && linear != DType::kBF16) || (dense != DType::kF32 && dense != DType::kBF16);
  *storage = e.linears == train::BaseStorage::kBf16 ? "bf16" : "f32";
  if (e.base_converted_at_load) *storage += fmt::format(" (from {}, widened at load)", DTypeName(linear));
  auto four_bit = [&](const std::string& type, bool dq) {
    e.linears = type == "nf4" ? train::BaseStorage::kNf4 : train::BaseStorage::kFp4;
    e.double_quant = dq;
    *storage = type + (dq ? " + double quant" : "");
  };
  if (qc && qc->kind == io::QuantizationConfig::Kind::kBnb4bit) {
    four_bit(qc->bnb_4bit_quant_type, qc->bnb_4bit_use_double_quant);
    e.compute = qc->bnb_4bit_compute_dtype;
  } else if (qc && qc->kind == io::QuantizationConfig::Kind::kBnb8bit) {
    e.linears = train::BaseStorage::kInt8;
    *storage = "int8 (LLM.int8())";
  } else if (o.method == "qlora") {
    four_bit(o.bnb_4bit_quant_type, o.bnb_4bit_use_double_quant);
  } else if (o.load_in_8bit) {
    e.linears = train::BaseStorage::kInt8;
    *storage = "int8 (LLM.int8())";
  }
  if (o.method == "qlora") e.compute = quant::ParseComputeDtype(ResolvedComputeDtype(o), "bnb_4bit_compute_dtype");
  return e;
}

std::vector<std::pair<std::string, uint64_t>> ComponentRows(const train::MemoryComponents& m) {
  return {{"weights", m.weights},         {"quant_constants", m.quant_constants}, {"gradients", m.gradients},
          {"optimizer_state", m.optimizer_state}, {"optimizer_paged", m.optimizer_paged},
          {"activations", m.activations}, {"logits", m.logits},                   {"scratch", m.scratch}};
}

}  // namespace nibble::api

namespace nibble {

namespace fs = std::filesystem;

MemoryEstimate EstimateMemory(const MemoryEstimateOptions& options) {
  const FinetuneOptions o = api::WithMethodDefaults(options.train);
  if (o.model_path.empty()) throw ConfigError("option 'model_path' (-m) is required");
  const fs::path p(o.model_path);
  const bool config_only = p.extension() == ".json" ||
                           (fs::is_directory(p) && !fs::exists(p / "model.safetensors") &&
                            !fs::exists(p / "model.safetensors.index.json"));
  std::optional<api::ModelSource> src;
  model::LlamaConfig c;
  std::string torch_dtype;
  if (config_only) {
    c = api::ConfigFromHfConfigJson(o.model_path);
    const fs::path cfg = p.extension() == ".json" ? p : p / "config.json";
    const nlohmann::json j = io::ReadJsonObject(cfg.string(), "config.json");
    torch_dtype = j.value("torch_dtype", j.value("dtype", std::string("float32")));
  } else {
    src = api::ModelSource::Open(o.model_path);
    c = api::ConfigFromSource(*src);
  }
  const int threads = ExecContext(o.num_threads).num_threads();
  MemoryEstimate r;
  train::EstimateOptions e = api::EstimateOptionsFor(o, src ? &*src : nullptr, torch_dtype, threads, &r.base_storage);
  e.zero_stage = options.zero_stage;
  e.world_size = options.world_size;
  const train::MemoryComponents m = train::EstimateTrainingMemory(c, e);
  r.json = m.ToJson().dump();
  r.components = api::ComponentRows(m);
  r.total = m.total();
  model::ForEachRole(c, [&](const model::RoleAt& ra) { r.params += ra.role->ShapeIn(c).NumElems(); });
  r.trainable = train::TrainableParams(c, e.train);
  r.rule_mixed_precision_adam = 16 * r.trainable;
  r.rule_deepspeed = 18 * r.params;
  // accelerate estimate-memory: the model's bytes at its dtype, about 4x for Adam training.
  const uint64_t model_bytes = src ? src->file_bytes() : r.params * (torch_dtype == "float32" ? 4 : 2);
  r.rule_accelerate = 4 * model_bytes;
  return r;
}

}  // namespace nibble
