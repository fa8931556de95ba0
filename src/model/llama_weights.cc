// LlamaWeights validation, the HF-name binder and the bf16 conversion of the matrices,
// each one walk over the role table (weight_roles.cc).
#include "model/llama_weights.h"

#include <fmt/format.h>

#include <cstring>
#include <string>

#include "kernels/convert.h"
#include "nibble/error.h"

namespace nibble::model {
namespace {

// Matrices f32 or bf16, norms and biases f32 only.
void CheckDType(const ConstTensorView& t, const std::string& role, bool matrix) {
  const bool ok = t.dtype == DType::kF32 || (matrix && t.dtype == DType::kBF16);
  if (!ok)
    throw ShapeError(fmt::format("Llama weights: tensor '{}': expected dtype {}, got {}", role,
                                 matrix ? "F32 or BF16" : "F32", DTypeName(t.dtype)));
}

void CheckView(const ConstTensorView& t, const std::string& role, const Shape& want, bool matrix) {
  if (t.data == nullptr) throw ShapeError(fmt::format("Llama weights: tensor '{}' is missing", role));
  CheckDType(t, role, matrix);
  if (!(t.shape == want))
    throw ShapeError(fmt::format("Llama weights: tensor '{}': expected shape {}, got {}", role, want.ToString(),
                                 t.shape.ToString()));
}

}  // namespace

void LlamaWeights::Validate(const LlamaConfig& c) const {
  if (static_cast<int64_t>(layers.size()) != c.num_hidden_layers)
    throw ShapeError(fmt::format("Llama weights: expected {} layers (num_hidden_layers), got {}",
                                 c.num_hidden_layers, layers.size()));
  ForEachRole(c, [&](const RoleAt& r) {
    const Shape want = r.role->ShapeIn(c);
    const LinearWeight* lin = r.Linear(*this);
    if (lin != nullptr && lin->q != nullptr) {  // a quantized Linear: the same [out, in] shape
      if (!(lin->q->shape == want))
        throw ShapeError(fmt::format("Llama weights: quantized tensor '{}': expected shape {}, got {}", r.Label(),
                                     want.ToString(), lin->q->shape.ToString()));
      return;
    }
    CheckView(lin != nullptr ? lin->dense : *r.View(*this), r.Label(), want, r.role->is_matrix());
  });
}

LlamaWeights BindHfTensors(const LlamaConfig& config, const TensorLookup& lookup, const QuantizedLookup& quantized) {
  LlamaWeights w;
  w.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  ForEachRole(config, [&](const RoleAt& r) {
    const std::string name = r.HfName();
    LinearWeight* lin = r.Linear(w);
    if (lin != nullptr && quantized && (lin->q = quantized(name)) != nullptr) return;
    std::optional<ConstTensorView> t = lookup(name);
    if (!t || t->data == nullptr) throw ShapeError(fmt::format("Llama weights: tensor '{}' is missing", name));
    (lin != nullptr ? lin->dense : *r.View(w)) = *t;
  });
  w.Validate(config);
  return w;
}

OwnedLlamaWeights ConvertWeightsToBf16(Allocator& alloc, const LlamaWeights& src, int num_threads) {
  OwnedLlamaWeights out;
  LlamaWeights& w = out.weights;
  w.layers.resize(src.layers.size());
  w.classifier_q = src.classifier_q;
  // Every present role is one Tensor (Tensors move without moving their data, so the views
  // stay valid as the vector grows). Matrices become bf16 (RNE from f32, copied if already
  // bf16), vectors stay f32; quantized Linears stay as they are (their compute dtype decides).
  ForEachRoleSlot(src, [&](const RoleAt& r) {
    const LinearWeight* s_lin = r.Linear(src);
    if (s_lin != nullptr) r.Linear(w)->q = s_lin->q;
    const ConstTensorView& t = s_lin != nullptr ? s_lin->dense : *r.View(src);
    if (t.data == nullptr) return;
    const bool matrix = r.role->is_matrix();
    CheckDType(t, r.Label(), matrix);
    const DType to = matrix ? DType::kBF16 : DType::kF32;
    Tensor& dst = out.storage.emplace_back(alloc, to, t.shape);
    if (t.dtype == to) {
      std::memcpy(dst.data(), t.data, t.NumBytes());
    } else {
      kernels::ConvertFromF32Parallel(num_threads, to, static_cast<const float*>(t.data), dst.data(),
                                      static_cast<size_t>(t.NumElems()));
    }
    (s_lin != nullptr ? r.Linear(w)->dense : *r.View(w)) = ConstTensorView{dst.data(), to, t.shape};
  });
  return out;
}

}  // namespace nibble::model
