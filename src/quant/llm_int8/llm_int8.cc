// LLM.int8() fast path: activations quantized by the reference code (M x K, cheap),
// then exact int8 dot products per output row (vpdpbusd where the CPU has VNNI,
// vpmaddubsw on AVX2, else pmaddwd through Highway at the capped target), rescaled in
// the order of spec §5.4, plus the outlier columns against the dequantized weights.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/llm_int8/llm_int8.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "quant/llm_int8/llm_int8.h"
#include "quant/qgemv-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::llm_int8::HWY_NAMESPACE {

// acc[n] = sum_k ca[k] * cb[n, k] for output rows [n0, n1) of one token (exact int32).
void DotRowsImpl(const int8_t* ca, const int8_t* cb, int64_t K, int32_t* acc, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n)
    acc[n] = nibble::quant::HWY_NAMESPACE::DotI8(ca, cb + n * K, static_cast<size_t>(K));
}

}  // namespace nibble::quant::llm_int8::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cpu_features.h"

namespace nibble::quant::llm_int8 {

HWY_EXPORT(DotRowsImpl);

namespace {

// §5.4-§5.5 on int32 products: y[n] = f32(f32(f32(acc * sca) * scb[n]) * K8) + outliers.
void Finish(const float* x, const int32_t* acc, float sca, const int32_t* outliers, int64_t num_outliers,
            const int8_t* cb, const float* scb, int64_t K, float* y, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    float v = ((static_cast<float>(acc[n]) * sca) * scb[n]) * kK8;
    for (int64_t o = 0; o < num_outliers; ++o) {
      const int32_t k = outliers[o];
      v += x[k] * ((static_cast<float>(cb[n * K + k]) * scb[n]) * kInv127);
    }
    y[n] = v;
  }
}

}  // namespace

Int8DotPath ChooseInt8DotPath() noexcept {
  if (CpuHasAvx512Vnni()) return Int8DotPath::kAvx512Vnni;
  if (CpuHasAvx2Fma()) return Int8DotPath::kAvx2;
  return Int8DotPath::kHighway;
}

void MatMul(int num_threads, const float* x, int64_t M, const int8_t* cb, const float* scb, int64_t N, int64_t K,
            float threshold, float* y) {
  const ActivationQuant q = QuantizeActivationsRef(x, M, K, threshold);
  const auto num_outliers = static_cast<int64_t>(q.outlier_cols.size());
  const Int8DotPath path = ChooseInt8DotPath();
  const bool vnni = path == Int8DotPath::kAvx512Vnni, avx2 = path == Int8DotPath::kAvx2;
  NoteDispatch(vnni ? "llm-int8 avx512vnni" : avx2 ? "llm-int8 avx2" : "llm-int8 highway");
  // vpdpbusd and vpmaddubsw take |a| unsigned; the signs move onto the weights (per
  // token: [K] bytes, and for vpdpbusd a [ceil(K/64)] sign mask).
  const int64_t words = (K + 63) / 64;
  std::vector<uint8_t> abs_a(vnni || avx2 ? static_cast<size_t>(M * K) : 0);
  std::vector<uint64_t> neg(vnni ? static_cast<size_t>(M * words) : 0);
  if (vnni || avx2) {
    for (int64_t i = 0; i < M * K; ++i) {
      const int8_t a = q.ca[static_cast<size_t>(i)];
      abs_a[static_cast<size_t>(i)] = static_cast<uint8_t>(a < 0 ? -a : a);
      if (vnni && a < 0) neg[static_cast<size_t>(i / K * words + i % K / 64)] |= uint64_t{1} << (i % K % 64);
    }
  }
  // Blocked over output rows: a tile of rows (<= 512 KiB of codes, L2-resident) serves
  // every token before the next tile, so a prompt streams the weights from DRAM once
  // instead of once per token. The integers and Finish are those of one token at a time.
  const int64_t tile = std::clamp<int64_t>((int64_t{512} << 10) / std::max<int64_t>(K, 1), 4, 256);
#pragma omp parallel num_threads(std::max(1, num_threads))
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
    std::vector<int32_t> acc(static_cast<size_t>(N));
    for (int64_t r0 = n0; r0 < n1; r0 += tile) {
      const int64_t r1 = std::min(n1, r0 + tile);
      for (int64_t m = 0; m < M; ++m) {
        if (vnni) {
          detail::Int8DotRowsVnni(abs_a.data() + m * K, neg.data() + m * words, cb, K, acc.data(), r0, r1);
        } else if (avx2) {
          detail::Int8DotRowsAvx2(q.ca.data() + m * K, abs_a.data() + m * K, cb, K, acc.data(), r0, r1);
        } else {
          NB_DYNAMIC_DISPATCH(DotRowsImpl)(q.ca.data() + m * K, cb, K, acc.data(), r0, r1);
        }
        Finish(x + m * K, acc.data(), q.sca[m], q.outlier_cols.data(), num_outliers, cb, scb, K, y + m * N, r0, r1);
      }
    }
  }
}

}  // namespace nibble::quant::llm_int8
#endif  // HWY_ONCE
