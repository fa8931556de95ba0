// nibble::Model: load once, run many times.
#include "nibble/model.h"

#include <fmt/format.h>

#include <string_view>

#include "api/model_impl.h"
#include "nibble/error.h"
#include "quant/registry.h"

namespace nibble {

WeightDtype ParseWeightDtype(std::string_view name) {
  if (name == "auto") return WeightDtype::kAuto;
  if (name == "f32") return WeightDtype::kF32;
  if (name == "bf16") return WeightDtype::kBf16;
  throw ConfigError(fmt::format("option 'dtype': expected auto, f32 or bf16, got \"{}\"", name));
}

namespace api {

LoadOptions LoadOptionsFrom(const ModelOptions& o) {
  LoadOptions lo;
  lo.weights = o.weight_dtype;
  lo.tokenizer_path = o.tokenizer_path;
  lo.load_tokenizer = o.load_tokenizer;
  lo.int8_activations = o.int8_activations;
  lo.int8_classifier = o.int8_classifier;
  lo.allow_nonfinite = o.allow_nonfinite;
  if (!o.load_quantized.empty()) {
    const std::optional<quant::QuantMethod> m = quant::ParseMethod(o.load_quantized);
    if (!m || (*m != quant::QuantMethod::kNf4 && *m != quant::QuantMethod::kFp4 && *m != quant::QuantMethod::kLlmInt8))
      throw ConfigError(fmt::format("option 'load_quantized': expected nf4, fp4 or int8, got \"{}\"",
                                    o.load_quantized));
    if (o.load_double_quant && *m == quant::QuantMethod::kLlmInt8)
      throw ConfigError("option 'load_double_quant' applies to nf4 and fp4, not int8");
    lo.quantize_linears = quant::QuantizeSpec{.method = *m, .blocksize = 64, .double_quant = o.load_double_quant};
  }
  if (!o.compute_dtype.empty()) lo.compute = quant::ParseComputeDtype(o.compute_dtype, "option 'compute_dtype'");
  if (lo.quantize_linears && lo.compute) lo.quantize_linears->compute = *lo.compute;
  return lo;
}

uint64_t PeakAllocBytes(const Model& model, ExecContext& run) {
  return model.load_peak_bytes() + run.allocator().peak_bytes();
}

}  // namespace api

Model::Impl::Impl(const ModelOptions& o) : options(o), ctx(o.num_threads) {
  if (o.model_path.empty()) throw ConfigError("option 'model' (-m) is required");
  const api::LoadOptions lo = api::LoadOptionsFrom(o);
  loaded = api::LoadModel(o.model_path, lo, ctx);
  warnings = api::Int8OptionWarnings(*loaded, lo);
  if (!o.adapter_path.empty()) adapter = api::AttachLoraAdapter(*loaded, o.adapter_path, &warnings);
}

Model::Model(const ModelOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const ModelOptions& Model::options() const { return impl_->options; }
int64_t Model::context_length() const { return impl_->loaded->config.max_position_embeddings; }
int64_t Model::vocab_size() const { return impl_->loaded->config.vocab_size; }
int64_t Model::num_layers() const { return impl_->loaded->config.num_hidden_layers; }
uint64_t Model::load_peak_bytes() const { return impl_->ctx.allocator().peak_bytes(); }
const std::vector<std::string>& Model::warnings() const { return impl_->warnings; }

}  // namespace nibble
