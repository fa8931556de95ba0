// AttachLoraAdapter: validate, read, and point the model's Linears at the adapter.
#include "api/adapter.h"

#include <fmt/format.h>

#include <filesystem>

#include "nibble/error.h"
#include "train/adapter_io.h"

namespace nibble::api {
namespace fs = std::filesystem;

std::unique_ptr<AttachedAdapter> AttachLoraAdapter(LoadedModel& m, const std::string& dir,
                                                   std::vector<std::string>* warnings) {
  if (m.model == nullptr) throw ConfigError("an adapter needs the model's weights loaded");
  const train::AdapterSummary summary = train::ReadAdapterSummary(dir);
  if (summary.architecture != "llama")
    throw ConfigError(fmt::format("{}: unsupported architecture: {} (its modules are {}'s, e.g. '{}'; nibble applies "
                                  "adapters to Llama-family models)",
                                  dir, summary.architecture, summary.architecture, summary.example_module));
  auto a = std::make_unique<AttachedAdapter>();
  a->path = dir;
  a->config = train::ReadLoraConfig(dir, warnings);
  try {
    a->lora = std::make_unique<peft::LoraModel>(m.config, a->config, a->index, 0);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", dir, e.what()));
  }
  a->params.assign(a->index.total(), 0.0f);
  train::ReadLoraWeights(dir, a->index, a->params.data(), &m.config);
  model::LlamaWeights w = m.model->weights();
  for (const model::RoleAt& r : a->lora->targets())
    if (r.Linear(w)->adapter != nullptr)
      throw ConfigError(fmt::format("{}: the model already has an adapter on {}", dir, peft::ModulePath(r)));
  a->lora->Attach(a->index, a->params.data(), nullptr, w);
  m.model = std::make_unique<model::LlamaModel>(m.config, std::move(w), m.model->quant_policy());
  const std::string base = summary.base_model;
  if (warnings != nullptr && !base.empty()) {
    const std::string mine = fs::path(m.source.path()).filename().string();
    const std::string theirs = fs::path(base).filename().string();
    if (mine != theirs && mine.find(theirs) == std::string::npos && theirs.find(mine) == std::string::npos)
      warnings->push_back(fmt::format("{}: the adapter was trained on '{}', this model is '{}' (the shapes match)", dir,
                                      base, m.source.path()));
  }
  return a;
}

}  // namespace nibble::api
