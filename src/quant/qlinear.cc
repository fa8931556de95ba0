// QLinear: GEMV for small batches, dequantize-then-GEMM for prompts.
#include "quant/qlinear.h"

#include "core/tensor.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "quant/qgemv.h"
#include "quant/qgemv4_i8.h"

namespace nibble::quant {

void QLinear(int num_threads, Allocator& alloc, const float* x, const QTensor& w, float* y, int64_t M,
             const QLinearPolicy& policy) {
  // int8 activations: one definition for every M (prompts run the kernel's row x token
  // tiles), so perplexity measures what decoding runs.
  if (M < kQLinearGemmMinRows || w.method == QuantMethod::kLlmInt8 || RunsInt8Activations(w, policy)) {
    QGemv(num_threads, x, w, y, M, policy);
    return;
  }
  const ComputeDtype compute = policy.ComputeFor(w);
  const auto N = static_cast<size_t>(w.rows()), K = static_cast<size_t>(w.cols());
  Tensor wf(alloc, DType::kF32, w.shape);
  DequantizeMatrix(w, static_cast<float*>(wf.data()), num_threads);
  if (compute == ComputeDtype::kF32) {
    kernels::MatMul(num_threads, x, static_cast<const float*>(wf.data()), y, static_cast<size_t>(M), N, K);
    return;
  }
  // bf16: weights rounded once to bf16; f16 (rare on CPUs) takes the GEMV path.
  if (compute == ComputeDtype::kBf16) {
    Tensor wb(alloc, DType::kBF16, w.shape);
    kernels::ConvertFromF32Parallel(num_threads, DType::kBF16, static_cast<const float*>(wf.data()), wb.data(), N * K);
    kernels::MatMulBf16(num_threads, x, static_cast<const uint16_t*>(wb.data()), y, static_cast<size_t>(M), N, K);
    return;
  }
  QGemv(num_threads, x, w, y, M, policy);
}

}  // namespace nibble::quant
