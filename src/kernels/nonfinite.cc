// FindNonFinite: one pass over the bits. Each block ORs "exponent all ones" over its
// elements (the compiler vectorizes the reduction on every target), and only a block
// that has one is walked again for the index.
#include "kernels/nonfinite.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace nibble::kernels {
namespace {

constexpr int64_t kBlock = 1 << 14;

template <class U, U kExp, U kMantissa, bool kNanOnly>
bool Bad(U u) {
  if constexpr (kNanOnly) {
    return (u & static_cast<U>(kExp | kMantissa)) == static_cast<U>(kExp | kMantissa);  // e4m3fn: S.1111.111
  } else {
    return (u & kExp) == kExp;
  }
}

template <class U, U kExp, U kMantissa, bool kNanOnly>
int64_t FirstIn(const uint8_t* p, int64_t begin, int64_t end) {
  const U* v = reinterpret_cast<const U*>(p);  // may be unaligned: read through memcpy
  for (int64_t b = begin; b < end; b += kBlock) {
    const int64_t e = std::min(end, b + kBlock);
    bool any = false;
    for (int64_t i = b; i < e; ++i) {
      U u;
      std::memcpy(&u, v + i, sizeof(U));
      any |= Bad<U, kExp, kMantissa, kNanOnly>(u);
    }
    if (!any) continue;
    for (int64_t i = b; i < e; ++i) {
      U u;
      std::memcpy(&u, v + i, sizeof(U));
      if (Bad<U, kExp, kMantissa, kNanOnly>(u)) return i;
    }
  }
  return -1;
}

int64_t FirstInRange(DType dtype, const uint8_t* p, int64_t begin, int64_t end) {
  switch (dtype) {
    case DType::kF64:
      return FirstIn<uint64_t, 0x7FF0000000000000ull, 0x000FFFFFFFFFFFFFull, false>(p, begin, end);
    case DType::kF32:
    case DType::kTF32:
      return FirstIn<uint32_t, 0x7F800000u, 0x007FFFFFu, false>(p, begin, end);
    case DType::kF16:
      return FirstIn<uint16_t, 0x7C00, 0x03FF, false>(p, begin, end);
    case DType::kBF16:
      return FirstIn<uint16_t, 0x7F80, 0x007F, false>(p, begin, end);
    case DType::kF8E4M3FN:
      return FirstIn<uint8_t, 0x78, 0x07, true>(p, begin, end);
    case DType::kF8E5M2:
      return FirstIn<uint8_t, 0x7C, 0x03, false>(p, begin, end);
    default:
      return -1;
  }
}

}  // namespace

int64_t FindNonFinite(int num_threads, DType dtype, const void* data, int64_t n) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  if (n <= 0) return -1;
  if (num_threads <= 1 || n < 4 * kBlock) return FirstInRange(dtype, p, 0, n);
  const int64_t per = (n + num_threads - 1) / num_threads;
  int64_t first = -1;
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int t = 0; t < num_threads; ++t) {
    const int64_t b = t * per, e = std::min(n, b + per);
    if (b >= e) continue;
    const int64_t i = FirstInRange(dtype, p, b, e);
    if (i >= 0) {
#pragma omp critical(nibble_find_nonfinite)
      if (first < 0 || i < first) first = i;
    }
  }
  return first;
}

}  // namespace nibble::kernels
