// GemvGroup: one parallel region over the concatenated rows of several GEMVs.
#include "kernels/gemv_group.h"

#include <omp.h>

#include <algorithm>

#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"

namespace nibble::kernels {
namespace {

constexpr size_t kRowAlign = 16;  // thread ranges start on 16-row boundaries (as MatMul's)

// Rows [begin, end) of the concatenation, run single-threaded.
void RunRange(const float* x, size_t K, std::span<const GemvOut> outs, size_t begin, size_t end) {
  size_t base = 0;
  for (const GemvOut& o : outs) {
    const size_t lo = std::max(begin, base), hi = std::min(end, base + o.n);
    if (lo < hi) {
      const size_t r = lo - base, len = hi - lo;
      if (o.bf16) {
        MatMulBf16(1, x, static_cast<const uint16_t*>(o.w) + r * K, o.y + r, 1, len, K);
      } else {
        MatMul(1, x, static_cast<const float*>(o.w) + r * K, o.y + r, 1, len, K);
      }
    }
    base += o.n;
  }
}

}  // namespace

void GemvGroup(int num_threads, const float* x, size_t K, std::span<const GemvOut> outs) noexcept {
  size_t total = 0;
  for (const GemvOut& o : outs) total += o.n;
  if (num_threads <= 1 || total < 2 * kRowAlign) {
    RunRange(x, K, outs, 0, total);
    return;
  }
  const auto threads = static_cast<size_t>(num_threads);
  const size_t per = (total + threads - 1) / threads;
  const size_t chunk = (per + kRowAlign - 1) / kRowAlign * kRowAlign;
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int t = 0; t < num_threads; ++t) {
    const size_t begin = static_cast<size_t>(t) * chunk;
    if (begin < total) RunRange(x, K, outs, begin, std::min(total, begin + chunk));
  }
}

}  // namespace nibble::kernels
