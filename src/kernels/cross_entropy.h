// Fused softmax cross-entropy over the vocabulary, forward and backward in one pass per
// row (llm.c's fused classifier; PyTorch's F.cross_entropy with ignore_index). Highway
// dispatch; OpenMP over rows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nibble::kernels {

// logits: [T, V] f32; targets: [T] in [0, V) or ignore_index (not checked).
// loss_t = logsumexp(logits_t) − logits_t[target_t], with the max subtracted before exp.
// With dlogits non-null it is written: dlogits_t = scale · (softmax(logits_t) −
// onehot(target_t)), and 0 on ignored rows (dlogits may equal logits).
// Returns the sum of loss_t over rows not ignored (in double); *counted gets their number.
// The caller divides by the token count it normalises by (mean over a batch, or over all
// micro-batches of an accumulation, as transformers >= 4.46 does) and passes 1/count as
// `scale`. noexcept, no checks.
double CrossEntropy(int num_threads, const float* logits, const int32_t* targets, float* dlogits, size_t T, size_t V,
                    int32_t ignore_index, float scale, size_t* counted) noexcept;

// Scalar oracle: max, exp, sums and the gradient in double.
double CrossEntropyRef(const float* logits, const int32_t* targets, float* dlogits, size_t T, size_t V,
                       int32_t ignore_index, float scale, size_t* counted) noexcept;

}  // namespace nibble::kernels
