// bitsandbytes' Adam/AdamW update (spec bnb-compatible-quantization.md §4.2.2, the CUDA
// kernel kOptimizerStatic8bit2StateBlockwise's semantics on every CPU): both moments kept
// as 8-bit codes of the dynamic maps (m: DYN_SIGNED, v: DYN_UNSIGNED) with one f32 absmax
// per block of 256, and the same update with f32 moments for tensors below min_8bit_size
// (and bnb's 32-bit optimizers). Every operation is one binary32 rounding in the spec's
// order (no FMA: this file builds with -ffp-contract=off), so results are bit-identical on
// every CPU and for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nibble::optim {

inline constexpr size_t kAdam8bitBlock = 256;  // bnb >= 0.44

// The kernel's binary32 hyperparameters.
struct BnbAdamHyper {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled, applied after the step: p ← p·(1 − lr·wd)
  float gnorm_scale = 1.0f;   // gs: gradients are multiplied by it first
};

// One step (t = step, 1 for the first) over n elements: p updated, q1/q2 (codes, [n]) and
// absmax1/absmax2 ([ceil(n/256)]) read and rewritten. A non-finite gradient element resets
// its moments to 0 and leaves its parameter alone. Parallel over blocks from 64 Ki elements.
void Adam8bitStep(int num_threads, float* p, const float* g, uint8_t* q1, uint8_t* q2, float* absmax1,
                  float* absmax2, size_t n, int64_t step, const BnbAdamHyper& h) noexcept;

// The same update with binary32 moments m, v ([n]) in place of the codes (bnb's 32-bit
// path): a non-finite gradient element leaves its parameter and moments alone.
void Adam32bitStep(int num_threads, float* p, const float* g, float* m, float* v, size_t n, int64_t step,
                   const BnbAdamHyper& h) noexcept;

}  // namespace nibble::optim
