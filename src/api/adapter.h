// A PEFT LoRA adapter applied to a loaded model at inference, unmerged, through the Linear
// seam the training core uses (`nibble generate|chat|perplexity -a ADAPTER`), and merged
// into the weights (`nibble merge`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/model_loader.h"
#include "model/param_index.h"
#include "peft/lora.h"

namespace nibble::api {

struct AttachedAdapter {
  std::string path;
  peft::LoraConfig config;
  model::ParamIndex index;
  std::unique_ptr<peft::LoraModel> lora;
  std::vector<float> params;  // A and B of every targeted Linear, as index lays them out
};

// Reads the adapter in `dir` (train::ReadAdapterSummary first, so a GPT-2 adapter is an
// "unsupported architecture" error, then its config and weights against this model's
// modules and shapes) and rebuilds m.model with each targeted Linear's adapter set. The
// returned object must outlive m.model. Warnings (unknown config keys, another base model
// name) go to `warnings`.
std::unique_ptr<AttachedAdapter> AttachLoraAdapter(LoadedModel& m, const std::string& dir,
                                                   std::vector<std::string>* warnings);

}  // namespace nibble::api
