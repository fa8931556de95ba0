// LLM.int8() scalar reference (spec §5.1-§5.5).
#include <algorithm>
#include <cmath>

#include "core/float_convert.h"
#include "quant/llm_int8/llm_int8.h"

namespace nibble::quant::llm_int8 {

void QuantizeWeightRef(const float* w, int64_t rows, int64_t cols, int8_t* cb, float* scb) noexcept {
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w + r * cols;
    float a = 0.0f;
    for (int64_t c = 0; c < cols; ++c) a = std::max(a, std::fabs(wr[c]));
    scb[r] = a;
    const float scale = a > 0.0f ? 127.0f / a : 0.0f;
    for (int64_t c = 0; c < cols; ++c)
      cb[r * cols + c] = static_cast<int8_t>(std::clamp(std::nearbyint(wr[c] * scale), -127.0f, 127.0f));
  }
}

ActivationQuant QuantizeActivationsRef(const float* x, int64_t M, int64_t K, float threshold) {
  ActivationQuant q;
  const float th = F16ToF32(F32ToF16(threshold));
  auto xh = [&](int64_t m, int64_t k) { return F16ToF32(F32ToF16(x[m * K + k])); };
  auto outlier = [&](float v) { return threshold > 0.0f && std::fabs(v) >= th; };
  std::vector<uint8_t> is_col(static_cast<size_t>(K), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k)
      if (outlier(xh(m, k))) is_col[k] = 1;
  for (int64_t k = 0; k < K; ++k)
    if (is_col[k]) q.outlier_cols.push_back(static_cast<int32_t>(k));
  q.sca.assign(static_cast<size_t>(M), 0.0f);
  q.ca.assign(static_cast<size_t>(M * K), 0);
  for (int64_t m = 0; m < M; ++m) {
    float a = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      const float v = xh(m, k);
      if (!outlier(v)) a = std::max(a, std::fabs(v));
    }
    q.sca[m] = a;
    const float scale = a > 0.0f ? 127.0f / a : 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      const float v = xh(m, k);
      if (outlier(v) || (is_col[k] && M > 1)) continue;
      q.ca[m * K + k] = static_cast<int8_t>(std::clamp(std::nearbyint(v * scale), -127.0f, 127.0f));
    }
  }
  return q;
}

void Int8MatMulRef(const int8_t* ca, const int8_t* cb, int64_t M, int64_t N, int64_t K, int32_t* acc) noexcept {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += int32_t{ca[m * K + k]} * int32_t{cb[n * K + k]};
      acc[m * N + n] = s;
    }
}

void MatMulRef(const float* x, int64_t M, const int8_t* cb, const float* scb, int64_t N, int64_t K, float threshold,
               float* y) {
  const ActivationQuant q = QuantizeActivationsRef(x, M, K, threshold);
  std::vector<int32_t> acc(static_cast<size_t>(M * N));
  Int8MatMulRef(q.ca.data(), cb, M, N, K, acc.data());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float v = ((static_cast<float>(acc[m * N + n]) * q.sca[m]) * scb[n]) * kK8;
      for (int32_t k : q.outlier_cols) {
        const float wd = (static_cast<float>(cb[n * K + k]) * scb[n]) * kInv127;
        v += x[m * K + k] * wd;
      }
      y[m * N + n] = v;
    }
}

}  // namespace nibble::quant::llm_int8
