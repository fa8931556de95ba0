// Several GEMVs on the same input vector in one OpenMP region: y_i = W_i · x for
// weights W_i [N_i, K] (f32 or bf16). Decoding one token runs q/k/v and gate/up this
// way, so each layer pays for 4 fork-joins instead of 7 and the threads split the rows
// of all matrices together (the small k/v projections alone are too short to split well).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace nibble::kernels {

struct GemvOut {
  const void* w = nullptr;  // [n, K] row-major, f32 or (bf16 == true) bf16
  bool bf16 = false;
  float* y = nullptr;       // [n]
  size_t n = 0;
};

// x: [K] f32. Each thread takes a contiguous range of the concatenated rows (aligned to
// 16 rows) and runs the single-threaded GEMV of MatMul / MatMulBf16 on its part of each
// matrix, so every output equals what MatMul(…, M = 1, …) gives, bit for bit.
// noexcept, no checks; outputs must not alias x or any weight.
void GemvGroup(int num_threads, const float* x, size_t K, std::span<const GemvOut> outs) noexcept;

}  // namespace nibble::kernels
