// The horizontal sum the hand-written AVX-512 kernels (C7) share: the 16 lanes through
// memory, pairwise, in a fixed order. Not _mm512_reduce_add_ps or lane shuffles: g++
// 12.2 flags their internal _mm512_undefined_* operand with -Wuninitialized (GCC PR
// 105593). Callers' target attributes include avx512f, so this inlines into them.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstddef>

namespace nibble::kernels {

__attribute__((target("avx512f"))) inline float SumLanes512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (size_t w = 8; w >= 1; w /= 2)
    for (size_t i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}

}  // namespace nibble::kernels
#endif  // __x86_64__
