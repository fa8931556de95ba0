// One Linear layer y = x·Wᵀ (+ an adapter's delta), the seam every weight kind and every
// adapter method meets at (docs/ARCHITECTURE.md, "The Linear seam"):
//   - the frozen or trainable weight: a dense f32/bf16 view, or a quantized QTensor;
//   - an optional LinearAdapter, defined here as an interface and implemented above the
//     model (LoRA in src/peft), so the model never includes peft.
// Forward, and a backward that gives the input gradient dX = dY·W (a GEMM for dense f32,
// row tiles of W widened or dequantized to f32 for bf16 and quantized weights, never the
// whole matrix) and, for trainable dense weights, dW += dYᵀ·X.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/allocator.h"
#include "core/tensor.h"
#include "quant/qtensor.h"

namespace nibble::model {

// Rows of a bf16 or quantized W widened to f32 at a time by LinearBackward's input gradient:
// its scratch is min(N, 256)·K + M·min(N, 256) floats.
inline constexpr size_t kLinearBackwardTileRows = 256;

// What a Linear call needs besides its operands.
struct LinearCall {
  int threads = 1;
  Allocator* alloc = nullptr;  // scratch (quantized GEMMs, tiles, adapter intermediates)
  bool training = false;       // adapters apply dropout only when training
  // Counter base for an adapter's random masks (dropout), set by the training loop per
  // micro-batch: a recomputation with the same value draws the same mask.
  uint64_t rng_counter = 0;
  // How quantized weights compute in this call (compute dtype, int8 activations): the
  // QTensor stays frozen data, shared by every caller.
  quant::QLinearPolicy quant;
};

// A learned delta added to one Linear's output: y += Δ(x). Implementations own their
// parameters and gradient slots (e.g. in flat buffers) and are created, targeted,
// merged and saved above the model. Both calls are made for the M rows of one call.
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // y: [M, out] += Δ(x: [M, in]).
  virtual void Forward(const LinearCall& call, const float* x, float* y, size_t M) const = 0;
  // Given the forward's input x and the upstream dy: [M, out], adds ∂Δ/∂x·dy to dx: [M, in]
  // (skipped when dx is null) and accumulates the adapter's own parameter gradients.
  virtual void Backward(const LinearCall& call, const float* x, const float* dy, float* dx, size_t M) const = 0;
};

// A Linear weight [out, in]: `q` when set (dense then stays absent), else `dense` (f32 or
// bf16). `adapter`, when set, adds its delta in forward and backward.
struct LinearWeight {
  ConstTensorView dense;
  const quant::QTensor* q = nullptr;
  const LinearAdapter* adapter = nullptr;

  bool present() const { return q != nullptr || dense.data != nullptr; }
  const Shape& shape() const { return q != nullptr ? q->shape : dense.shape; }
  size_t out_features() const { return static_cast<size_t>(shape()[0]); }
  size_t in_features() const { return static_cast<size_t>(shape()[1]); }
};

// y: [M, out] = x: [M, in] · Wᵀ (+ adapter). The weight's kind picks the kernel: f32
// MatMul, bf16 MatMulBf16 or QLinear, so an all-f32 model runs exactly the f32 MatMul.
// y must not alias x. No checks (the model validated the shapes at load).
void LinearForward(const LinearCall& call, const LinearWeight& w, const float* x, float* y, size_t M);

// One input, several Linears (q/k/v, gate/up): for M == 1 with dense weights and no
// adapters, one parallel region of GEMVs (kernels::GemvGroup, bit-identical to MatMul);
// otherwise LinearForward for each.
struct LinearOut {
  const LinearWeight* w;
  float* y;
};
void LinearForwardGroup(const LinearCall& call, const float* x, size_t M, std::span<const LinearOut> outs);

// Backward of LinearForward for upstream dy: [M, out] and the forward's input x: [M, in].
//   dx: [M, in] = dy·W (+ the adapter's ∂Δ/∂x·dy), or += when `accumulate_dx`; skipped when
//       dx is null (the first layer's input needs no gradient only in tests).
//   dw: [out, in] f32 += dyᵀ·x when non-null (full fine-tuning of a dense weight).
// The adapter's parameter gradients accumulate as its Backward defines.
void LinearBackward(const LinearCall& call, const LinearWeight& w, const float* x, const float* dy, float* dx,
                    bool accumulate_dx, float* dw, size_t M);

}  // namespace nibble::model
