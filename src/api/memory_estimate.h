// The estimator's inputs for a run: how a `nibble finetune` with these options would hold
// the base (from the checkpoint's own dtypes and quantization_config, or an HF config.json
// alone), shared by `nibble memory` and by every finetune run's memory.json.
#pragma once

#include <string>

#include "api/model_source.h"
#include "model/llama_config.h"
#include "nibble/finetune.h"
#include "train/memory_estimate.h"

namespace nibble::api {

// `src` null: only a config.json is at hand (`torch_dtype` as it gives it). `threads` as
// the run's. *storage receives a name for the Linear weights' storage ("bf16", "nf4 +
// double quant", ...).
train::EstimateOptions EstimateOptionsFor(const FinetuneOptions& o, const ModelSource* src,
                                          const std::string& torch_dtype, int threads, std::string* storage);

// The components as (name, bytes) rows in the --json order.
std::vector<std::pair<std::string, uint64_t>> ComponentRows(const train::MemoryComponents& m);

}  // namespace nibble::api
