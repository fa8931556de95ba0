// LLM.int8() fast path: activations quantized by the reference code (M x K, cheap),
// then exact int8 dot products (pmaddwd through Highway) per output row, rescaled in
// the order of spec §5.4, plus the outlier columns against the dequantized weights.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/llm_int8/llm_int8.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "quant/llm_int8/llm_int8.h"
#include "quant/qgemv-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::llm_int8::HWY_NAMESPACE {

// Output rows [n0, n1) of one token: y[n] = Y8 (§5.4) + outlier columns (§5.5).
void RowsImpl(const float* x, const int8_t* ca, float sca, const int32_t* outliers, int64_t num_outliers,
              const int8_t* cb, const float* scb, int64_t K, float* y, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w = cb + n * K;
    const int32_t acc = nibble::quant::HWY_NAMESPACE::DotI8(ca, w, static_cast<size_t>(K));
    float v = ((static_cast<float>(acc) * sca) * scb[n]) * kK8;
    for (int64_t o = 0; o < num_outliers; ++o) {
      const int32_t k = outliers[o];
      v += x[k] * ((static_cast<float>(w[k]) * scb[n]) * kInv127);
    }
    y[n] = v;
  }
}

}  // namespace nibble::quant::llm_int8::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <algorithm>

namespace nibble::quant::llm_int8 {

HWY_EXPORT(RowsImpl);

void MatMul(int num_threads, const float* x, int64_t M, const int8_t* cb, const float* scb, int64_t N, int64_t K,
            float threshold, float* y) {
  const ActivationQuant q = QuantizeActivationsRef(x, M, K, threshold);
  const auto num_outliers = static_cast<int64_t>(q.outlier_cols.size());
  for (int64_t m = 0; m < M; ++m) {
#pragma omp parallel num_threads(std::max(1, num_threads))
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      HWY_DYNAMIC_DISPATCH(RowsImpl)(x + m * K, q.ca.data() + m * K, q.sca[m], q.outlier_cols.data(), num_outliers, cb,
                                     scb, K, y + m * N, N * t / nt, N * (t + 1) / nt);
    }
  }
}

}  // namespace nibble::quant::llm_int8
#endif  // HWY_ONCE
