// Bulk dtype conversion: Highway dispatch, the scalar references and the OpenMP
// wrappers. The per-target bodies live in convert-inl.h.
#include "kernels/convert.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/float_convert.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/convert.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "kernels/convert-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

// Unsupported dtypes are excluded by the callers (IsConvertible); they do nothing here.
void ConvertFromF32Target(DType to, const float* HWY_RESTRICT src, void* HWY_RESTRICT dst, size_t n) {
  switch (to) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16:
      return Transform(src, static_cast<uint16_t*>(dst), n, EncodeF16());
    case DType::kBF16:
      return Transform(src, static_cast<uint16_t*>(dst), n, EncodeBF16());
    case DType::kTF32:
      return Transform(src, static_cast<float*>(dst), n, EncodeTF32());
    case DType::kF8E4M3FN:
      return Transform(src, static_cast<uint8_t*>(dst), n, EncodeE4M3());
    case DType::kF8E5M2:
      return Transform(src, static_cast<uint8_t*>(dst), n, EncodeE5M2());
    default:
      return;
  }
}

void ConvertToF32Target(DType from, const void* HWY_RESTRICT src, float* HWY_RESTRICT dst, size_t n) {
  switch (from) {
    case DType::kF32:
    case DType::kTF32:  // tf32 is stored as an f32: the bits are the value
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16:
      return Transform(static_cast<const uint16_t*>(src), dst, n, DecodeF16());
    case DType::kBF16:
      return Transform(static_cast<const uint16_t*>(src), dst, n, DecodeBF16());
    case DType::kF8E4M3FN:
      return Transform(static_cast<const uint8_t*>(src), dst, n, DecodeE4M3());
    case DType::kF8E5M2:
      return Transform(static_cast<const uint8_t*>(src), dst, n, DecodeE5M2());
    default:
      return;
  }
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(ConvertFromF32Target);
HWY_EXPORT(ConvertToF32Target);

bool IsConvertible(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kTF32:
    case DType::kF8E4M3FN:
    case DType::kF8E5M2:
      return true;
    default:
      return false;
  }
}

void ConvertFromF32(DType to, const float* src, void* dst, size_t n) noexcept {
  NB_DYNAMIC_DISPATCH(ConvertFromF32Target)(to, src, dst, n);
}

void ConvertToF32(DType from, const void* src, float* dst, size_t n) noexcept {
  NB_DYNAMIC_DISPATCH(ConvertToF32Target)(from, src, dst, n);
}

void ConvertFromF32Ref(DType to, const float* src, void* dst, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    switch (to) {
      case DType::kF32:
        static_cast<float*>(dst)[i] = src[i];
        break;
      case DType::kF16:
        static_cast<uint16_t*>(dst)[i] = F32ToF16(src[i]);
        break;
      case DType::kBF16:
        static_cast<uint16_t*>(dst)[i] = F32ToBF16(src[i]);
        break;
      case DType::kTF32:
        static_cast<float*>(dst)[i] = F32ToTF32(src[i]);
        break;
      case DType::kF8E4M3FN:
        static_cast<uint8_t*>(dst)[i] = F32ToF8E4M3(src[i]);
        break;
      case DType::kF8E5M2:
        static_cast<uint8_t*>(dst)[i] = F32ToF8E5M2(src[i]);
        break;
      default:
        return;
    }
  }
}

void ConvertToF32Ref(DType from, const void* src, float* dst, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    switch (from) {
      case DType::kF32:
      case DType::kTF32:
        dst[i] = static_cast<const float*>(src)[i];
        break;
      case DType::kF16:
        dst[i] = F16ToF32(static_cast<const uint16_t*>(src)[i]);
        break;
      case DType::kBF16:
        dst[i] = BF16ToF32(static_cast<const uint16_t*>(src)[i]);
        break;
      case DType::kF8E4M3FN:
        dst[i] = F8E4M3ToF32(static_cast<const uint8_t*>(src)[i]);
        break;
      case DType::kF8E5M2:
        dst[i] = F8E5M2ToF32(static_cast<const uint8_t*>(src)[i]);
        break;
      default:
        return;
    }
  }
}

namespace {

// Chunks are multiples of 64 elements, i.e. whole 64-byte lines for 1-byte outputs and
// 2 or 4 lines for wider ones, so two threads never write the same line (with aligned
// buffers). Below kMinParallelElems one thread is faster than waking a team (~ a few us).
constexpr size_t kChunkAlignElems = 64;
constexpr size_t kMinParallelElems = 1 << 15;

template <class Fn>
void SplitOverThreads(int num_threads, size_t n, Fn fn) {
  if (num_threads <= 1 || n < kMinParallelElems) {
    fn(size_t{0}, n);
    return;
  }
  const size_t per = (n + num_threads - 1) / num_threads;
  const size_t chunk = (per + kChunkAlignElems - 1) / kChunkAlignElems * kChunkAlignElems;
#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int t = 0; t < num_threads; ++t) {
    const size_t begin = static_cast<size_t>(t) * chunk;
    if (begin < n) fn(begin, std::min(chunk, n - begin));
  }
}

}  // namespace

void ConvertFromF32Parallel(int num_threads, DType to, const float* src, void* dst, size_t n) noexcept {
  const size_t out_bytes = GetDTypeInfo(to).block_bytes;
  SplitOverThreads(num_threads, n, [&](size_t begin, size_t count) {
    ConvertFromF32(to, src + begin, static_cast<uint8_t*>(dst) + begin * out_bytes, count);
  });
}

void ConvertToF32Parallel(int num_threads, DType from, const void* src, float* dst, size_t n) noexcept {
  const size_t in_bytes = GetDTypeInfo(from).block_bytes;
  SplitOverThreads(num_threads, n, [&](size_t begin, size_t count) {
    ConvertToF32(from, static_cast<const uint8_t*>(src) + begin * in_bytes, dst + begin, count);
  });
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
