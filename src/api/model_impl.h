// What a nibble::Model holds (include/nibble/model.h): the options it was loaded with, the
// ExecContext whose allocator owns the weights converted at load, and the LoadedModel that
// points into it and into the mapped file. The runs (generate, chat, perplexity,
// finetune) read it; each makes its own ExecContext for its scratch and caches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/adapter.h"
#include "api/model_loader.h"
#include "core/exec_context.h"
#include "nibble/model.h"

namespace nibble {

struct Model::Impl {
  explicit Impl(const ModelOptions& o);

  ModelOptions options;
  ExecContext ctx;  // owns the converted weights: declared (so destroyed after) before `loaded`
  std::unique_ptr<api::AttachedAdapter> adapter;  // outlives the model that points into it
  std::unique_ptr<api::LoadedModel> loaded;
  std::vector<std::string> warnings;
};

namespace api {

// The loader's options for a Model's.
LoadOptions LoadOptionsFrom(const ModelOptions& o);

// The load fields every run's option struct repeats (GenerateOptions, ChatOptions,
// PerplexityOptions, FinetuneOptions), as a ModelOptions for the one-shot overloads.
template <class RunOptions>
ModelOptions ModelOptionsFrom(const RunOptions& o) {
  ModelOptions m;
  m.model_path = o.model_path;
  m.tokenizer_path = o.tokenizer_path;
  m.allow_nonfinite = o.allow_nonfinite;
  m.num_threads = o.num_threads;
  if constexpr (requires { o.adapter_path; }) m.adapter_path = o.adapter_path;
  if constexpr (requires { o.weight_dtype; }) m.weight_dtype = ParseWeightDtype(o.weight_dtype);
  if constexpr (requires { o.int8_activations; }) m.int8_activations = o.int8_activations;
  if constexpr (requires { o.int8_classifier; }) m.int8_classifier = o.int8_classifier;
  return m;
}

// A run's peak bytes through nibble's allocators: the model's load-time peak (converted
// weights) plus the run's own (KV cache, scratch).
uint64_t PeakAllocBytes(const Model& model, ExecContext& run);

}  // namespace api
}  // namespace nibble
