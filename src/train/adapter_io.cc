// PEFT adapter files: writing and reading adapter_config.json and adapter_model.safetensors.
#include "train/adapter_io.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <cstring>
#include <set>

#include "io/atomic_writer.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "core/check.h"
#include "kernels/convert.h"

namespace nibble::train {
namespace fs = std::filesystem;

namespace {

// The heads to permute a LoRA tensor's rows by between HF's order and `c`'s (lora_B of
// q_proj / k_proj of a Meta-order model), else 0.
int64_t LoraRopeHeads(const model::LlamaConfig& c, const std::string& name) {
  return name.ends_with(".lora_B.weight") ? model::RopeRowHeads(c, name) : 0;
}

}  // namespace

void WriteLoraAdapter(io::AtomicDir& dir, const peft::LoraModel& lora, const model::ParamIndex& index,
                      const float* params, const std::string& base_model, const model::LlamaConfig& mc) {
  const peft::LoraConfig& c = lora.config();
  std::set<std::string> suffixes;
  for (const model::RoleAt& r : lora.targets()) {
    const std::string p = peft::ModulePath(r);
    suffixes.insert(p.substr(p.rfind('.') + 1));
  }
  nlohmann::json j;  // std::map keys: written sorted, as PEFT's json.dumps(sort_keys=True)
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model;
  j["bias"] = c.bias;
  j["fan_in_fan_out"] = c.fan_in_fan_out;
  j["inference_mode"] = true;
  j["init_lora_weights"] = c.init == peft::LoraInit::kGaussian ? nlohmann::json("gaussian")
                                                                : nlohmann::json(c.init == peft::LoraInit::kKaiming);
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  j["lora_alpha"] = c.lora_alpha;
  j["lora_dropout"] = c.lora_dropout;
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = c.r;
  j["rank_pattern"] = nlohmann::json::object();
  j["revision"] = nullptr;
  j["target_modules"] = std::vector<std::string>(suffixes.begin(), suffixes.end());
  j["task_type"] = "CAUSAL_LM";
  if (c.use_rslora) j["use_rslora"] = true;  // only when not the default (spec §3.4)
  const std::string text = j.dump(2) + "\n";
  dir.WriteFile("adapter_config.json", {reinterpret_cast<const uint8_t*>(text.data()), text.size()});

  std::vector<io::SafetensorsWriteTensor> tensors;
  std::vector<std::vector<float>> permuted;
  permuted.reserve(index.entries().size());
  for (const model::ParamEntry& e : index.entries()) {
    const float* src = params + e.offset;
    if (const int64_t heads = LoraRopeHeads(mc, e.name)) {
      std::vector<float>& v = permuted.emplace_back(src, src + e.count);
      model::PermuteRopeRows(v.data(), heads, mc.HeadDim(), e.shape[1]);
      src = v.data();
    }
    tensors.push_back({e.name, DType::kF32, e.shape, {reinterpret_cast<const uint8_t*>(src), e.count * sizeof(float)}});
  }
  io::WriteSafetensors(dir.File("adapter_model.safetensors"), tensors, {{"format", "pt"}}, io::Existing::kRefuse);
}

AdapterSummary ReadAdapterSummary(const std::string& dir) {
  const fs::path d = fs::is_directory(dir) ? fs::path(dir) : fs::path(dir).parent_path();
  const std::string cfg_path = (d / "adapter_config.json").string();
  const std::string st_path = (d / "adapter_model.safetensors").string();
  const nlohmann::json j = io::ReadJsonObject(cfg_path, "adapter_config.json");
  AdapterSummary s;
  s.peft_type = j.value("peft_type", "");
  if (s.peft_type != "LORA")
    throw ConfigError(fmt::format("{}: 'peft_type': expected \"LORA\", got \"{}\"", cfg_path, s.peft_type));
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1)
    throw ConfigError(fmt::format("{}: 'r': missing or not a positive integer", cfg_path));
  s.r = j["r"].get<int64_t>();
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    s.base_model = j["base_model_name_or_path"].get<std::string>();
  const io::SafetensorsFile f = io::SafetensorsFile::Open(st_path);
  struct Pair {
    const io::SafetensorsTensor *a = nullptr, *b = nullptr;
  };
  std::map<std::string, Pair> modules;
  const std::string prefix = "base_model.model.";
  for (const io::SafetensorsTensor& t : f.tensors()) {
    const bool is_a = t.name.ends_with(".lora_A.weight"), is_b = t.name.ends_with(".lora_B.weight");
    if (!t.name.starts_with(prefix) || !(is_a || is_b))
      throw ConfigError(fmt::format("{}: tensor '{}' is not a LoRA weight (expected base_model.model.<module>."
                                    "lora_A.weight or lora_B.weight)",
                                    st_path, t.name));
    const std::string module = t.name.substr(prefix.size(), t.name.size() - prefix.size() - 14);
    if (t.shape.rank() != 2)
      throw ConfigError(fmt::format("{}: tensor '{}': expected 2 dimensions, got shape {}", st_path, t.name,
                                    t.shape.ToString()));
    if ((is_a ? t.shape[0] : t.shape[1]) != s.r)
      throw ConfigError(fmt::format("{}: tensor '{}': shape {} does not have rank r = {} of adapter_config.json",
                                    st_path, t.name, t.shape.ToString(), s.r));
    (is_a ? modules[module].a : modules[module].b) = &t;
  }
  for (const auto& [module, p] : modules)
    if (p.a == nullptr || p.b == nullptr)
      throw ConfigError(fmt::format("{}: module '{}' has lora_{} but not lora_{}", st_path, module, p.a ? "A" : "B",
                                    p.a ? "B" : "A"));
  if (modules.empty()) throw ConfigError(fmt::format("{}: holds no LoRA tensors", st_path));
  s.modules = modules.size();
  s.example_module = modules.begin()->first;
  s.architecture = s.example_module.starts_with("model.layers.") || s.example_module == "lm_head" ? "llama"
                   : s.example_module.starts_with("transformer.h.")                               ? "gpt2"
                                                                                                  : "unknown";
  return s;
}

peft::LoraConfig ReadLoraConfig(const std::string& dir, std::vector<std::string>* warnings) {
  const std::string path =
      fs::is_directory(dir) ? (fs::path(dir) / "adapter_config.json").string() : dir;
  const nlohmann::json j = io::ReadJsonObject(path, "adapter_config.json");
  auto fail = [&](const std::string& key, const std::string& what) {
    return ConfigError(fmt::format("{}: '{}': {}", path, key, what));
  };
  const std::string type = j.value("peft_type", "");
  if (type != "LORA") throw fail("peft_type", fmt::format("expected \"LORA\", got \"{}\"", type));
  peft::LoraConfig c;
  try {
    if (!j.contains("r") || !j["r"].is_number_integer()) throw fail("r", "missing or not an integer");
    c.r = j["r"].get<int64_t>();
    c.lora_alpha = j.value("lora_alpha", 8.0);
    c.lora_dropout = j.value("lora_dropout", 0.0);
    c.use_rslora = j.value("use_rslora", false);
    c.fan_in_fan_out = j.value("fan_in_fan_out", false);
    c.bias = j.value("bias", std::string("none"));
    if (j.contains("init_lora_weights")) {
      const nlohmann::json& v = j["init_lora_weights"];
      c.init = v.is_boolean() ? (v.get<bool>() ? peft::LoraInit::kKaiming : peft::LoraInit::kNone)
                              : peft::ParseLoraInit(v.get<std::string>());
    }
    const nlohmann::json& t = j.at("target_modules");
    if (t.is_string()) {
      if (t.get<std::string>() != "all-linear")
        throw fail("target_modules", "a regular expression is not supported; give the module names as a list");
      c.target_modules = {"all-linear"};
    } else {
      c.target_modules = t.get<std::vector<std::string>>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(fmt::format("{}: {}", path, e.what()));
  }
  for (const char* key : {"use_dora", "lora_bias", "use_qalora"}) {
    if (j.value(key, false)) throw fail(key, "is true; nibble does not implement it");
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (j.contains(key) && !j[key].is_null() && !j[key].empty()) throw fail(key, "per-module ranks are not supported");
  }
  for (const char* key : {"layer_replication", "layers_to_transform", "modules_to_save"}) {
    if (j.contains(key) && !j[key].is_null()) throw fail(key, "is set; nibble does not implement it");
  }
  static const std::set<std::string> kKnown = {
      "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode",
      "init_lora_weights", "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout", "modules_to_save",
      "peft_type", "r", "rank_pattern", "revision", "target_modules", "task_type", "use_rslora", "use_dora",
      "layer_replication", "megatron_config", "megatron_core", "loftq_config", "exclude_modules",
      "trainable_token_indices", "eva_config", "corda_config", "use_qalora", "qalora_group_size", "lora_bias",
      "target_parameters", "peft_version"};
  for (const auto& [key, value] : j.items()) {
    if (!kKnown.count(key) && warnings != nullptr) warnings->push_back(fmt::format("{}: unknown key '{}' ignored", path, key));
  }
  try {
    c.Validate();
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", path, e.what()));
  }
  return c;
}

void ReadLoraWeights(const std::string& dir, const model::ParamIndex& index, float* params,
                     const model::LlamaConfig* c) {
  ReadParamTensors(fs::is_directory(dir) ? (fs::path(dir) / "adapter_model.safetensors").string() : dir, index,
                   params);
  if (c == nullptr) return;
  for (const model::ParamEntry& e : index.entries())
    if (const int64_t heads = LoraRopeHeads(*c, e.name))
      model::PermuteRopeRows(params + e.offset, heads, c->HeadDim(), e.shape[1], /*to_hf=*/false);
}

void ReadParamTensors(const std::string& path, const model::ParamIndex& index, float* params, std::string_view prefix) {
  const io::SafetensorsFile f = io::SafetensorsFile::Open(path);
  std::set<std::string> expected;
  for (const model::ParamEntry& e : index.entries()) {
    const std::string name = std::string(prefix) + e.name;
    expected.insert(name);
    const io::SafetensorsTensor* t = f.FindTensor(name);
    if (t == nullptr) throw ConfigError(fmt::format("{}: tensor '{}' is missing", path, name));
    if (!(t->shape == e.shape))
      throw ConfigError(fmt::format("{}: tensor '{}': expected shape {}, got {}", path, name, e.shape.ToString(),
                                    t->shape.ToString()));
    if (t->dtype != DType::kF32 && t->dtype != DType::kBF16 && t->dtype != DType::kF16)
      throw ConfigError(fmt::format("{}: tensor '{}': expected F32, BF16 or F16, got {}", path, name,
                                    DTypeName(t->dtype)));
    if (t->data.size() != DTypeBytes(t->dtype, e.count))
      throw ConfigError(fmt::format("{}: tensor '{}': {} bytes for {} elements", path, name, t->data.size(), e.count));
    kernels::ConvertToF32(t->dtype, t->data.data(), params + e.offset, e.count);
  }
  for (const io::SafetensorsTensor& t : f.tensors()) {
    if (t.name.starts_with(prefix) && !expected.count(t.name))
      throw ConfigError(fmt::format("{}: tensor '{}' belongs to no trainable parameter of this run (check "
                                    "target_modules and the base model)",
                                    path, t.name));
  }
}

namespace {

struct StateTensor {
  std::string name;
  DType dtype;
  Shape shape;
  void* data;
  size_t bytes;
};

std::vector<StateTensor> StateTensors(const model::ParamIndex& index, const optim::AdamWState& state) {
  std::vector<StateTensor> out;
  for (size_t i = 0; i < index.entries().size(); ++i) {
    const model::ParamEntry& e = index.entries()[i];
    const optim::AdamWState::Slot& s = state.slots()[i];
    if (s.eight_bit) {
      const Shape blocks{static_cast<int64_t>(s.blocks())};
      out.push_back({"state1." + e.name, DType::kU8, e.shape, s.q1, e.count});
      out.push_back({"state2." + e.name, DType::kU8, e.shape, s.q2, e.count});
      out.push_back({"absmax1." + e.name, DType::kF32, blocks, s.absmax1, s.blocks() * sizeof(float)});
      out.push_back({"absmax2." + e.name, DType::kF32, blocks, s.absmax2, s.blocks() * sizeof(float)});
    } else {
      out.push_back({"exp_avg." + e.name, DType::kF32, e.shape, s.m, e.count * sizeof(float)});
      out.push_back({"exp_avg_sq." + e.name, DType::kF32, e.shape, s.v, e.count * sizeof(float)});
    }
  }
  return out;
}

}  // namespace

void WriteOptimizerState(io::AtomicDir& dir, const model::ParamIndex& index, const optim::AdamWState& state) {
  NB_CHECK(state.slots().size() == index.entries().size(), "optimizer state for another index");
  const std::vector<StateTensor> st = StateTensors(index, state);
  std::vector<io::SafetensorsWriteTensor> tensors;
  for (const StateTensor& t : st)
    tensors.push_back({t.name, t.dtype, t.shape, {static_cast<const uint8_t*>(t.data), t.bytes}});
  io::WriteSafetensors(dir.File("optimizer.safetensors"), tensors, {{"format", "pt"}}, io::Existing::kRefuse);
}

void ReadOptimizerState(const std::string& path, const model::ParamIndex& index, optim::AdamWState& state) {
  NB_CHECK(state.slots().size() == index.entries().size(), "optimizer state for another index");
  const io::SafetensorsFile f = io::SafetensorsFile::Open(path);
  std::set<std::string> expected;
  for (const StateTensor& t : StateTensors(index, state)) {
    expected.insert(t.name);
    const io::SafetensorsTensor* s = f.FindTensor(t.name);
    if (s == nullptr)
      throw ConfigError(fmt::format("{}: tensor '{}' is missing (was the checkpoint written with another --optim?)",
                                    path, t.name));
    if (!(s->shape == t.shape) || s->dtype != t.dtype || s->data.size() != t.bytes)
      throw ConfigError(fmt::format("{}: tensor '{}': expected {} {}, got {} {}", path, t.name, DTypeName(t.dtype),
                                    t.shape.ToString(), DTypeName(s->dtype), s->shape.ToString()));
    std::memcpy(t.data, s->data.data(), t.bytes);
  }
  for (const io::SafetensorsTensor& t : f.tensors())
    if (!expected.count(t.name))
      throw ConfigError(fmt::format("{}: tensor '{}' belongs to no optimizer state of this run", path, t.name));
}

}  // namespace nibble::train
