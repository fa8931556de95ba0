// The multi-sequence forward and its backward: B sequences × T tokens, no KV cache, every
// layer's activations kept (LayerActivations with their own buffers). Training and GPTQ's
// layer driver call this; it runs the same LayerForward as LlamaModel::Forward.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "model/llama_layer.h"
#include "model/llama_model.h"

namespace nibble::model {

// Activations of a B×T batch kept for backward, from two allocators so that each part is
// counted on its own: `acts` (every layer's activations, the residual streams, the final
// norm) and `logits` ([N, V], reused as d(logits) by the loss).
//
// With `checkpoint` (gradient checkpointing, transformers' gradient_checkpointing=True) only
// the residual stream entering each layer is kept; every layer's other activations share
// one layer's buffers, and BackwardBatch recomputes each layer from its kept input before
// its backward. Per row that keeps (L + 1)·D + one layer's 2D + 2QD + 2KVD + 3F + D floats
// instead of D + L·(3D + 2QD + 2KVD + 3F + D); the recomputation draws the same dropout
// masks (counter-based), so losses and gradients are bit-identical to the run without it.
class BatchActivations {
 public:
  // Throws ShapeError when the byte count overflows.
  BatchActivations(Allocator& acts, Allocator& logits, const LlamaConfig& c, const Batch& batch, int threads,
                   bool checkpoint = false);
  bool checkpointed() const { return checkpoint_; }
  // Floats `acts` takes for this shape (the estimator's formula and the constructor's size).
  static size_t ActivationFloats(const LlamaConfig& c, const Batch& batch, int threads, bool checkpoint);

  const Batch& batch() const { return batch_; }
  // Runs the next batches as `b` (B and T no larger than the batch constructed with: the
  // buffers are used from their start, so a shorter padded batch costs only its rows).
  // ShapeError otherwise.
  void Reshape(const Batch& b);
  std::span<const LayerActivations> layers() const { return layers_; }
  float* final_in() const { return layers_.back().out; }  // [N, D] the last layer's output
  float* final_out() const { return final_out_; }         // [N, D] model.norm(final_in)
  float* logits() const { return logits_; }               // [N, V]
  float* cos() const { return cos_; }                     // [T, Dh/2]
  float* sin() const { return sin_; }
  float* scores() const { return scores_; }               // [threads, T]
  const std::vector<int32_t>& tokens() const { return tokens_; }
  std::vector<int32_t>& tokens() { return tokens_; }
  size_t activation_bytes() const { return acts_.num_bytes(); }
  size_t logits_bytes() const { return logits_t_.num_bytes(); }

 private:
  Batch batch_, capacity_;
  bool checkpoint_ = false;
  Tensor acts_, logits_t_;
  std::vector<LayerActivations> layers_;
  std::vector<int32_t> tokens_;
  float *final_out_, *logits_, *cos_, *sin_, *scores_;
};

// Gradients of the model's parameters (f32, accumulated +=); null for a frozen role. With
// tied embeddings the classifier's gradient goes to `embed`.
struct ModelGrads {
  float* embed = nullptr;
  std::vector<LayerGrads> layers;  // L entries (all null when nothing in the layers trains)
  float* final_norm = nullptr;
  float* lm_head = nullptr;

  // The gradient slot of a role (layers must already hold r.layer + 1 entries).
  float*& Slot(const RoleAt& r);
};

// Runs tokens [B·T] (sequence-major, copied into acts.tokens()) through the model at
// positions 0 .. T − 1 of each sequence, keeping every activation in `acts`, and writes
// the logits [N, V] into acts.logits(). Throws ShapeError for a token outside the
// vocabulary (naming the sequence and position), a token count other than B·T, or a
// model with a classifier quantized at load (--int8-classifier has no backward).
void ForwardBatch(const LlamaModel& model, std::span<const int32_t> tokens, BatchActivations& acts,
                  const LinearCall& call);

// Backward from dlogits [N, V] (may be acts.logits() itself) to every parameter gradient
// in `g` and every adapter's gradient. Scratch comes from call.alloc.
void BackwardBatch(const LlamaModel& model, const BatchActivations& acts, const float* dlogits,
                   const ModelGrads& g, const LinearCall& call);

}  // namespace nibble::model
