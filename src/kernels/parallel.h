// [0, n) split into contiguous chunks over one OpenMP region: the row-split scaffolding
// the quantized GEMV paths and the decoder layer's row ops share.
#pragma once

#include <omp.h>

namespace nibble::kernels {

// fn(begin, end, thread, threads) runs once per thread of a region of `threads` (at most),
// thread t on [n·t/nt, n·(t+1)/nt). threads <= 1: fn(0, n, 0, 1) on the calling thread.
template <class Int, class Fn>
void ParallelChunks(int threads, Int n, const Fn& fn) {
  if (threads <= 1) {
    fn(Int{0}, n, 0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    fn(n * static_cast<Int>(t) / static_cast<Int>(nt), n * static_cast<Int>(t + 1) / static_cast<Int>(nt), t, nt);
  }
}

}  // namespace nibble::kernels
