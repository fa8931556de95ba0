// FindNonFinite: one pass over the bits with Highway (run-time dispatch). Each block of
// 16 Ki elements ORs "(bits & mask) == value" over 4 vectors per step; only a block with
// a hit is walked again in scalar for the first index. Integer compares only, so every
// target gives the same answer.
#include "kernels/nonfinite.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/nonfinite.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int64_t kBlock = 1 << 14;

// First i in [begin, end) with (bits_i & mask) == value, or -1. p may be unaligned.
template <class T>
int64_t FirstBad(const uint8_t* p, int64_t begin, int64_t end, T mask, T value) {
  const hn::ScalableTag<T> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto vm = hn::Set(d, mask), vv = hn::Set(d, value);
  const T* v = reinterpret_cast<const T*>(p);
  auto scalar_bad = [&](int64_t i) {
    T u;
    std::memcpy(&u, p + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    return static_cast<T>(u & mask) == value;
  };
  for (int64_t b = begin; b < end; b += kBlock) {
    const int64_t e = std::min(end, b + kBlock);
    auto hit = hn::Zero(d);
    int64_t i = b;
    for (; i + 4 * L <= e; i += 4 * L) {
      const auto h0 = hn::VecFromMask(d, hn::Eq(hn::And(hn::LoadU(d, v + i), vm), vv));
      const auto h1 = hn::VecFromMask(d, hn::Eq(hn::And(hn::LoadU(d, v + i + L), vm), vv));
      const auto h2 = hn::VecFromMask(d, hn::Eq(hn::And(hn::LoadU(d, v + i + 2 * L), vm), vv));
      const auto h3 = hn::VecFromMask(d, hn::Eq(hn::And(hn::LoadU(d, v + i + 3 * L), vm), vv));
      hit = hn::Or(hit, hn::Or(hn::Or(h0, h1), hn::Or(h2, h3)));
    }
    bool any = !hn::AllFalse(d, hn::MaskFromVec(hit));
    for (; i < e && !any; ++i) any = scalar_bad(i);
    if (!any) continue;
    for (int64_t j = b; j < e; ++j)
      if (scalar_bad(j)) return j;
  }
  return -1;
}

int64_t FirstInRange(DType dtype, const uint8_t* p, int64_t begin, int64_t end) {
  switch (dtype) {
    case DType::kF64:
      return FirstBad<uint64_t>(p, begin, end, 0x7FF0000000000000ull, 0x7FF0000000000000ull);
    case DType::kF32:
    case DType::kTF32:
      return FirstBad<uint32_t>(p, begin, end, 0x7F800000u, 0x7F800000u);
    case DType::kF16:
      return FirstBad<uint16_t>(p, begin, end, 0x7C00, 0x7C00);
    case DType::kBF16:
      return FirstBad<uint16_t>(p, begin, end, 0x7F80, 0x7F80);
    case DType::kF8E4M3FN:
      return FirstBad<uint8_t>(p, begin, end, 0x7F, 0x7F);  // NaN only: S.1111.111
    case DType::kF8E5M2:
      return FirstBad<uint8_t>(p, begin, end, 0x7C, 0x7C);
    default:
      return -1;
  }
}

int64_t FindNonFiniteTarget(int num_threads, DType dtype, const void* data, int64_t n) {
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

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(FindNonFiniteTarget);

int64_t FindNonFinite(int num_threads, DType dtype, const void* data, int64_t n) noexcept {
  return NB_DYNAMIC_DISPATCH(FindNonFiniteTarget)(num_threads, dtype, data, n);
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
