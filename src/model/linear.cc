// LinearForward / LinearBackward: the kernel choice per weight kind, and the input
// gradient through bf16 and quantized weights by row tiles.
#include "model/linear.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "kernels/gemv_group.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"
#include "quant/qlinear.h"

namespace nibble::model {
namespace {


// Rows of W widened to f32 per tile in the backward pass: 256 rows of K = 8192 are 8 MiB,
// small against the activations, and a GEMM of M x K x 256 still runs near its peak.
constexpr size_t kTileRows = kLinearBackwardTileRows;

// Rows [n0, n1) of a bf16 or quantized W: [N, K] as f32 into tile: [n1 - n0, K].
void WidenRows(const LinearWeight& w, size_t n0, size_t n1, size_t K, float* tile, int threads) {
  if (w.q != nullptr) {
    quant::DequantizeRange(*w.q, static_cast<int64_t>(n0 * K), static_cast<int64_t>(n1 * K), tile);
  } else {
    kernels::ConvertToF32Parallel(threads, DType::kBF16, static_cast<const uint16_t*>(w.dense.data) + n0 * K, tile,
                                  (n1 - n0) * K);
  }
}

}  // namespace

void LinearForward(const LinearCall& call, const LinearWeight& w, const float* x, float* y, size_t M) {
  const size_t N = w.out_features(), K = w.in_features();
  if (w.q != nullptr) {
    quant::QLinear(call.threads, *call.alloc, x, *w.q, y, static_cast<int64_t>(M), call.quant);
  } else if (w.dense.dtype == DType::kBF16) {
    kernels::MatMulBf16(call.threads, x, static_cast<const uint16_t*>(w.dense.data), y, M, N, K);
  } else {
    kernels::MatMul(call.threads, x, w.dense.f32(), y, M, N, K);
  }
  if (w.adapter != nullptr) w.adapter->Forward(call, x, y, M);
}

void LinearForwardGroup(const LinearCall& call, const float* x, size_t M, std::span<const LinearOut> outs) {
  const bool fuse = M == 1 && std::all_of(outs.begin(), outs.end(), [](const LinearOut& o) {
                      return o.w->q == nullptr && o.w->adapter == nullptr;
                    });
  if (!fuse) {
    for (const LinearOut& o : outs) LinearForward(call, *o.w, x, o.y, M);
    return;
  }
  kernels::GemvOut gemv[8];
  NB_CHECK(outs.size() <= std::size(gemv), "{} Linears in one group, at most {}", outs.size(), std::size(gemv));
  for (size_t i = 0; i < outs.size(); ++i)
    gemv[i] = {outs[i].w->dense.data, outs[i].w->dense.dtype == DType::kBF16, outs[i].y, outs[i].w->out_features()};
  kernels::GemvGroup(call.threads, x, outs[0].w->in_features(), std::span(gemv, outs.size()));
}

void LinearBackward(const LinearCall& call, const LinearWeight& w, const float* x, const float* dy, float* dx,
                    bool accumulate_dx, float* dw, size_t M) {
  using kernels::Trans;
  const size_t N = w.out_features(), K = w.in_features();
  if (dx != nullptr) {
    if (w.q == nullptr && w.dense.dtype == DType::kF32) {
      kernels::Gemm(call.threads, Trans::kNo, Trans::kNo, dy, w.dense.f32(), dx, M, K, N, accumulate_dx);
    } else {
      // dx += dy[:, n0:n1] · W[n0:n1, :] tile by tile, W widened to f32 one tile at a time.
      const size_t rows = std::min(N, kTileRows);
      Tensor scratch(*call.alloc, DType::kF32, Shape{static_cast<int64_t>(rows * K + M * rows)});
      float* tile = static_cast<float*>(scratch.data());
      float* dy_cols = tile + rows * K;
      for (size_t n0 = 0; n0 < N; n0 += rows) {
        const size_t n1 = std::min(N, n0 + rows), nb = n1 - n0;
        WidenRows(w, n0, n1, K, tile, call.threads);
        for (size_t m = 0; m < M; ++m) std::memcpy(dy_cols + m * nb, dy + m * N + n0, nb * sizeof(float));
        kernels::Gemm(call.threads, Trans::kNo, Trans::kNo, dy_cols, tile, dx, M, K, nb, accumulate_dx || n0 > 0);
      }
    }
  }
  if (dw != nullptr) kernels::Gemm(call.threads, Trans::kYes, Trans::kNo, dy, x, dw, N, K, M, /*accumulate=*/true);
  if (w.adapter != nullptr) w.adapter->Backward(call, x, dy, dx, M);
}

}  // namespace nibble::model
