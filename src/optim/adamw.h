// AdamW as torch.optim.AdamW computes it (torch 2.x, the single-tensor CPU path:
// foreach=False, fused=False, amsgrad=False, maximize=False), over flat f32 buffers, so a
// parameter range (one tensor, or a ZeRO shard) is a pointer and a length.
//
// Per step t (1-based), in this order and in f32 except where noted (torch/optim/adam.py,
// _single_tensor_adam, with AdamW's decoupled decay):
//   p   ← p · (1 − lr·wd)                         (1 − lr·wd computed in double, applied in f32)
//   m   ← lerp(m, g, 1 − β1)                      (torch's lerp: m + w·(g − m) for w < 0.5)
//   v   ← v·β2 + (1 − β2)·g·g
//   bc1 = 1 − β1^t, bc2 = 1 − β2^t                (double, as Python computes them)
//   den = sqrt(v) / f32(sqrt(bc2)) + eps
//   p   ← p − f32(lr / bc1) · (m / den)
// eps sits outside the square root; the decay is decoupled (not added to g). Highway
// vectors (lerp fused, as torch's vector body does), split over threads from 256 Ki
// elements.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nibble::optim {

struct AdamWConfig {
  double beta1 = 0.9;           // torch default
  double beta2 = 0.999;         // torch default
  double eps = 1e-8;            // torch default
  double weight_decay = 0.01;   // torch's AdamW default (transformers' Trainer passes its own, 0.0)
};

// One step over n parameters. p, m, v updated in place; g read. `step` is the step count
// after this step (1 for the first). `lr` is this step's learning rate (the schedule's),
// `weight_decay` this range's (0 for biases and norm weights, as the HF Trainer groups
// them). `num_threads` splits ranges of 256 Ki elements or more (0 or 1: this thread).
// noexcept, no checks.
void AdamWStep(int num_threads, float* p, const float* g, float* m, float* v, size_t n, int64_t step, double lr,
               double weight_decay, const AdamWConfig& c) noexcept;

// Scalar oracle: the same update with every operation in double (p, m, v rounded to f32
// when stored).
void AdamWStepRef(float* p, const float* g, float* m, float* v, size_t n, int64_t step, double lr,
                  double weight_decay, const AdamWConfig& c) noexcept;

}  // namespace nibble::optim
