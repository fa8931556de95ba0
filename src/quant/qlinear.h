// QLinear: y = x · Wᵀ for a quantized W, the one entry the model layer calls. Small
// batches (decode, M < kQLinearGemmMinRows) stream the packed weights through QGemv;
// larger ones dequantize W once into scratch (f32, or bf16 when the compute dtype is
// bf16) and run the dense GEMM (oneDNN for large M), as bitsandbytes' Linear4bit does.
// LLM.int8() always takes its int8 path (the outlier decomposition is per batch).
#pragma once

#include <cstdint>

#include "core/allocator.h"
#include "quant/qtensor.h"

namespace nibble::quant {

inline constexpr int64_t kQLinearGemmMinRows = 8;

// x: [M, K] f32, y: [M, N] f32, W: [N, K]. Scratch comes from `alloc`.
// `policy` as for QGemv (quant/qtensor.h).
void QLinear(int num_threads, Allocator& alloc, const float* x, const QTensor& w, float* y, int64_t M,
             const QLinearPolicy& policy = {});

}  // namespace nibble::quant
