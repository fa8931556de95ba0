// QGemv dispatch: compiles qgemv-inl.h for every target; one dynamic dispatch per row
// range (never per block). QGemvRef is the scalar oracle.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/qgemv.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "quant/qgemv-inl.h"
#include "quant/qtensor.h"

#include <vector>

HWY_BEFORE_NAMESPACE();
namespace nibble::quant::HWY_NAMESPACE {

// Rows [n0, n1) of y = W x for a row-aligned 4-bit W (K % B == 0, B % 32 == 0).
// xe, xo: [K/2] deinterleaved x (bf16-rounded when bf16); scale_buf: [4 * K/B] scratch.
void Gemv4RowsImpl(const QTensor* w, const float* xe, const float* xo, float* y, int64_t n0, int64_t n1, bool bf16,
                   float* scale_buf) {
  const auto K = static_cast<size_t>(w->cols()), B = static_cast<size_t>(w->blocksize);
  const size_t bpr = K / B;
  constexpr size_t kR = 4;  // rows per pass (Dot4Rows)
  const uint8_t* codes[kR];
  const float* scales[kR];
  auto setup = [&](int64_t n, size_t r) {
    if (!w->nested) {
      scales[r] = w->scales.data() + static_cast<size_t>(n) * bpr;
    } else {  // scale_buf holds kR rows of reconstructed absmax
      w->BlockScales(n * static_cast<int64_t>(bpr), (n + 1) * static_cast<int64_t>(bpr), scale_buf + r * bpr);
      scales[r] = scale_buf + r * bpr;
    }
    codes[r] = w->codes.data() + static_cast<size_t>(n) * K / 2;
  };
  const float* lut = w->format->lut;
  // The rows after this pass (row-major codes), while a whole pass of them remains.
  auto next_rows = [&](int64_t n) -> const uint8_t* {
    return n + 2 * static_cast<int64_t>(kR) <= n1 ? w->codes.data() + static_cast<size_t>(n + kR) * K / 2 : nullptr;
  };
  int64_t n = n0;
#if NB_LUT16_VECTOR
  const hn::ScalableTag<float> df;
  const size_t chunk = 8 * hn::Lanes(df);
  // Wide path: whole chunks of 8N elements, each in one block (bf16 compute builds one
  // table per block), or two 64-element blocks per 16-lane chunk (f32 compute only).
  const bool blocks_fit = B % chunk == 0 || (!bf16 && B == 64 && chunk == 128);
  if (K % chunk == 0 && blocks_fit && (B & (B - 1)) == 0) {
    // x re-ordered into planes once per call (per thread: K floats; bf16-rounded for bf16).
    std::vector<float> x(K), xp(K);
    for (size_t j = 0; j < K / 2; ++j) {
      x[2 * j] = xe[j];
      x[2 * j + 1] = xo[j];
    }
    PermuteForWide(df, x.data(), K, xp.data());
    for (; n + static_cast<int64_t>(kR) <= n1; n += kR) {
      for (size_t r = 0; r < kR; ++r) setup(n + static_cast<int64_t>(r), r);
      if (bf16) {
        Dot4RowsWide<true, kR>(lut, codes, scales, xp.data(), K, B, y + n, next_rows(n));
      } else {
        Dot4RowsWide<false, kR>(lut, codes, scales, xp.data(), K, B, y + n, next_rows(n));
      }
    }
    for (; n < n1; ++n) {
      setup(n, 0);
      if (bf16) {
        Dot4RowsWide<true, 1>(lut, codes, scales, xp.data(), K, B, y + n, nullptr);
      } else {
        Dot4RowsWide<false, 1>(lut, codes, scales, xp.data(), K, B, y + n, nullptr);
      }
    }
    return;
  }
#endif
  for (; n + static_cast<int64_t>(kR) <= n1; n += kR) {
    for (size_t r = 0; r < kR; ++r) setup(n + static_cast<int64_t>(r), r);
    if (bf16) {
      Dot4Rows<true, kR>(lut, codes, scales, xe, xo, K, B, y + n, next_rows(n));
    } else {
      Dot4Rows<false, kR>(lut, codes, scales, xe, xo, K, B, y + n, next_rows(n));
    }
  }
  for (; n < n1; ++n) {
    setup(n, 0);
    if (bf16) {
      Dot4Rows<true, 1>(lut, codes, scales, xe, xo, K, B, y + n, nullptr);
    } else {
      Dot4Rows<false, 1>(lut, codes, scales, xe, xo, K, B, y + n, nullptr);
    }
  }
}

// Rows [n0, n1) of y = W x for a row-aligned int8 blockwise W (K % B == 0):
// y[n] = sum_b d_b * (sum_{k in b} q_k x_k + zp_b * xsum[b]).  xsum: [K/B] block sums of x.
void Gemv8RowsImpl(const QTensor* w, const float* x, const float* xsum, float* y, int64_t n0, int64_t n1) {
  const auto K = static_cast<size_t>(w->cols()), B = static_cast<size_t>(w->blocksize);
  const size_t bpr = K / B;
  const auto* q = reinterpret_cast<const int8_t*>(w->codes.data());
  for (int64_t n = n0; n < n1; ++n) {
    float acc = 0.0f;
    for (size_t b = 0; b < bpr; ++b) {
      const size_t blk = static_cast<size_t>(n) * bpr + b;
      float dot = DotI8F32(q + blk * B, x + b * B, B);
      if (!w->zeros.empty()) dot += w->zeros[blk] * xsum[b];
      acc += dot * w->scales[blk];
    }
    y[n] = acc;
  }
}

}  // namespace nibble::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <vector>

#include "core/float_convert.h"
#include "kernels/matmul_bf16.h"
#include "kernels/parallel.h"
#include "quant/qgemv.h"
#include "quant/qgemv4_i8.h"
#include "quant/llm_int8/llm_int8.h"

namespace nibble::quant {

HWY_EXPORT(Gemv4RowsImpl);
HWY_EXPORT(Gemv8RowsImpl);

namespace {

float RoundTo(ComputeDtype c, float v) {
  switch (c) {
    case ComputeDtype::kBf16:
      return BF16ToF32(F32ToBF16(v));
    case ComputeDtype::kF16:
      return F16ToF32(F32ToF16(v));
    case ComputeDtype::kF32:
      break;
  }
  return v;
}

// x: [M, K] rounded to the compute dtype c.
std::vector<float> RoundedInput(const float* x, const QTensor& w, int64_t M, ComputeDtype c) {
  std::vector<float> xr(static_cast<size_t>(M * w.cols()));
  for (size_t i = 0; i < xr.size(); ++i) xr[i] = RoundTo(c, x[i]);
  return xr;
}

// Output rows [n0, n1): each row dequantized exactly, rounded to the compute dtype c and
// dotted with the rounded x in index order (f32). row: [K] scratch. The oracle's loop,
// and the generic path's (any layout, f16 compute) per thread.
void RowsRef(const float* xr, const QTensor& w, ComputeDtype c, float* y, int64_t M, int64_t n0, int64_t n1,
             float* row) {
  const int64_t N = w.rows(), K = w.cols();
  for (int64_t n = n0; n < n1; ++n) {
    DequantizeRange(w, n * K, (n + 1) * K, row);
    for (int64_t k = 0; k < K; ++k) row[k] = RoundTo(c, row[k]);
    for (int64_t m = 0; m < M; ++m) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += xr[m * K + k] * row[k];
      y[m * N + n] = acc;
    }
  }
}

// x's even and odd elements (the 4-bit kernels' operand layout), rounded to bf16 when
// `bf16` (as f32 values, or as bf16 bits through the uint16_t overload).
void SplitEvenOdd(const float* xm, int64_t K, bool bf16, float* xe, float* xo) {
  for (int64_t j = 0; j < K / 2; ++j) {
    xe[j] = bf16 ? RoundTo(ComputeDtype::kBf16, xm[2 * j]) : xm[2 * j];
    xo[j] = bf16 ? RoundTo(ComputeDtype::kBf16, xm[2 * j + 1]) : xm[2 * j + 1];
  }
}
void SplitEvenOdd(const float* xm, int64_t K, uint16_t* xe, uint16_t* xo) {
  for (int64_t j = 0; j < K / 2; ++j) {
    xe[j] = F32ToBF16(xm[2 * j]);
    xo[j] = F32ToBF16(xm[2 * j + 1]);
  }
}

}  // namespace

void QGemv(int num_threads, const float* x, const QTensor& w, float* y, int64_t M,
           const QLinearPolicy& policy) noexcept {
  const int threads = std::max(1, num_threads);
  const int64_t N = w.rows(), K = w.cols(), B = w.blocksize;
  if (w.method == QuantMethod::kLlmInt8) {
    llm_int8::MatMul(threads, x, M, reinterpret_cast<const int8_t*>(w.codes.data()), w.scales.data(), N, K,
                     w.threshold, y);
    return;
  }
  if (RunsInt8Activations(w, policy)) {
    QGemv4I8(threads, x, w, y, M);
    return;
  }
  const ComputeDtype compute = policy.ComputeFor(w);
  const bool aligned = K % B == 0;
  const auto half = static_cast<size_t>(K / 2);
  if (w.format->code_bits == 4 && aligned && B == 64 && compute == ComputeDtype::kBf16 && kernels::HasAvx512Bf16()) {
    NoteDispatch("4-bit bf16-compute avx512bf16");
    std::vector<uint16_t> xe(half), xo(half);
    for (int64_t m = 0; m < M; ++m) {
      SplitEvenOdd(x + m * K, K, xe.data(), xo.data());
      kernels::ParallelChunks(threads, N, [&](int64_t n0, int64_t n1, int, int) {
        std::vector<float> scale_buf(static_cast<size_t>(4 * K / B));
        detail::Gemv4RowsBf16Avx512(&w, xe.data(), xo.data(), y + m * N, n0, n1, scale_buf.data());
      });
    }
    return;
  }
  if (w.format->code_bits == 4 && aligned && B % 32 == 0 && compute != ComputeDtype::kF16) {
    const bool bf16 = compute == ComputeDtype::kBf16;
    std::vector<float> xe(half), xo(half);
    for (int64_t m = 0; m < M; ++m) {
      SplitEvenOdd(x + m * K, K, bf16, xe.data(), xo.data());
      kernels::ParallelChunks(threads, N, [&](int64_t n0, int64_t n1, int, int) {
        std::vector<float> scale_buf(static_cast<size_t>(4 * K / B));
        NB_DYNAMIC_DISPATCH(Gemv4RowsImpl)(&w, xe.data(), xo.data(), y + m * N, n0, n1, bf16, scale_buf.data());
      });
    }
    return;
  }
  if (w.format->code_bits == 8 && aligned && compute == ComputeDtype::kF32) {
    std::vector<float> xsum(static_cast<size_t>(K / B));
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      for (int64_t b = 0; b < K / B; ++b) {
        float s = 0.0f;
        for (int64_t k = b * B; k < (b + 1) * B; ++k) s += xm[k];
        xsum[b] = s;
      }
      kernels::ParallelChunks(threads, N, [&](int64_t n0, int64_t n1, int, int) {
        NB_DYNAMIC_DISPATCH(Gemv8RowsImpl)(&w, xm, xsum.data(), y + m * N, n0, n1);
      });
    }
    return;
  }
  // Any other layout, or f16 compute: the oracle's loop per thread.
  const std::vector<float> xr = RoundedInput(x, w, M, compute);
  kernels::ParallelChunks(threads, N, [&](int64_t n0, int64_t n1, int, int) {
    std::vector<float> row(static_cast<size_t>(K));
    RowsRef(xr.data(), w, compute, y, M, n0, n1, row.data());
  });
}

std::vector<KernelPath> QuantKernelPaths() {
  const std::string hwy = "highway " + HighwayTargetName();
  const int64_t target = CappedHighwayTargets();
  const bool vector = (target & -target) != HWY_SCALAR && (target & -target) != HWY_EMU128;
  std::string dot;
  switch (llm_int8::ChooseInt8DotPath()) {
    case llm_int8::Int8DotPath::kAvx512Vnni:
      dot = "avx512vnni (vpdpbusd)";
      break;
    case llm_int8::Int8DotPath::kAvx2:
      dot = "avx2 (vpmaddubsw)";
      break;
    case llm_int8::Int8DotPath::kHighway:
      dot = hwy + " (widening multiply)";
      break;
  }
  return {
      {"4-bit GEMV, f32 compute", vector ? hwy + " (table in registers; 8 codes per 32-bit lane where K allows)"
                                         : hwy + " (scalar loop)"},
      {"4-bit GEMV, bf16 compute", kernels::HasAvx512Bf16() ? "avx512bf16 (vdpbf16ps) for blocksize 64, else " + hwy
                                                            : hwy},
      {"4-bit GEMV, --int8-activations", Int8ActivationsPathName(ChooseInt8ActivationsPath())},
      {"LLM.int8() int8 dot", dot},
      {"int8 blockwise GEMV, quantize/dequantize, GGUF blocks", hwy},
  };
}

void QGemvRef(const float* x, const QTensor& w, float* y, int64_t M, const QLinearPolicy& policy) {
  const int64_t N = w.rows(), K = w.cols();
  if (w.method == QuantMethod::kLlmInt8) {
    llm_int8::MatMulRef(x, M, reinterpret_cast<const int8_t*>(w.codes.data()), w.scales.data(), N, K, w.threshold, y);
    return;
  }
  if (RunsInt8Activations(w, policy)) {
    QGemv4I8Ref(x, w, y, M);
    return;
  }
  const ComputeDtype compute = policy.ComputeFor(w);
  std::vector<float> row(static_cast<size_t>(K));
  RowsRef(RoundedInput(x, w, M, compute).data(), w, compute, y, M, 0, N, row.data());
}

}  // namespace nibble::quant
#endif  // HWY_ONCE
