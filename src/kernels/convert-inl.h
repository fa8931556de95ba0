// Per-target body of the bulk dtype conversions (kernels/convert.h): integer-only
// rounding so every Highway target, the SCALAR fallback included, matches core/float_convert.h bit
// for bit. No hardware float<->half converters are used: F16C sets the quiet bit on
// decode, Highway 1.0.3's bf16 DemoteTo truncates and vcvtneps2bf16 flushes subnormals.

#if defined(NIBBLE_KERNELS_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NIBBLE_KERNELS_CONVERT_INL_H_
#undef NIBBLE_KERNELS_CONVERT_INL_H_
#else
#define NIBBLE_KERNELS_CONVERT_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DU32 = hn::ScalableTag<uint32_t>;
using DI32 = hn::ScalableTag<int32_t>;
using DF32 = hn::ScalableTag<float>;
using VU32 = hn::Vec<DU32>;

// ---- f32 -> narrow; each takes and returns one u32 lane per element ----

// bf16: RNE on the top 16 bits (bits + 0x7FFF + lsb), NaN: keep top bits, set quiet 0x40.
struct EncodeBF16 {
  HWY_INLINE VU32 operator()(DU32 du, VU32 bits) const {
    const DI32 di;
    const auto abs = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu)));
    const auto is_nan = hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000)));
    const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
    const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(bits, hn::Set(du, 0x7FFFu)), lsb));
    const auto nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x40u));
    return hn::IfThenElse(is_nan, nan, rounded);
  }
};

// tf32: the same at bit 13, kept in f32 layout (low 13 bits cleared).
struct EncodeTF32 {
  HWY_INLINE VU32 operator()(DU32 du, VU32 bits) const {
    const DI32 di;
    const auto abs = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu)));
    const auto is_nan = hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000)));
    const auto keep = hn::Set(du, ~0x1FFFu);
    const auto lsb = hn::And(hn::ShiftRight<13>(bits), hn::Set(du, 1u));
    const auto rounded = hn::And(hn::Add(hn::Add(bits, hn::Set(du, 0xFFFu)), lsb), keep);
    const auto nan = hn::And(hn::Or(bits, hn::Set(du, 0x400000u)), keep);
    return hn::IfThenElse(is_nan, nan, rounded);
  }
};

// f16, e4m3fn, e5m2: a sign bit, kE exponent bits (bias kBias), kM mantissa bits.
// kOverflowAt: smallest |f32| bits that become kOverflowCode (inf, or 448 for e4m3fn).
// NaN: kNaNBase | (top kM payload bits if kKeepPayload).
template <int kE, int kM, int kBias, uint32_t kOverflowAt, uint32_t kOverflowCode, uint32_t kNaNBase,
          bool kKeepPayload>
struct EncodeSmall {
  static constexpr int kDrop = 23 - kM;                      // f32 mantissa bits dropped
  static constexpr uint32_t kRebias = (127 - kBias) << 23;   // f32 -> target exponent offset
  static constexpr int32_t kNormalMin = (128 - kBias) << 23; // f32 bits of the smallest normal
  static constexpr int kSubShiftBase = 150 - (kBias - 1) - kM;  // shift = base - f32 exponent
  static constexpr int kSignShift = 31 - kE - kM;

  HWY_INLINE VU32 operator()(DU32 du, VU32 bits) const {
    const DI32 di;
    const auto abs_u = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
    const auto abs = hn::BitCast(di, abs_u);
    const auto one = hn::Set(du, 1u);
    // Normal: RNE at bit kDrop, then rebias; a carry rolls into the exponent.
    const auto lsb = hn::And(hn::ShiftRight<kDrop>(abs_u), one);
    // (abs + half - 1 + lsb - rebias) with the two constants folded (mod 2^32: exact for
    // normal lanes, whose result is nonnegative; other lanes are replaced below).
    const auto normal = hn::ShiftRight<kDrop>(
        hn::Add(hn::Add(abs_u, hn::Set(du, (1u << (kDrop - 1)) - 1 - kRebias)), lsb));
    // Subnormal results and overflow/NaN are rare in real tensors: each has its own
    // block, skipped when no lane needs it (the selects below are exact either way).
    // Integer Ge is missing in Highway 1.0.3: x >= k is written x > k - 1.
    auto code = normal;
    const auto is_sub = hn::Gt(hn::Set(di, kNormalMin), abs);
    if (!hn::AllFalse(di, is_sub)) {
      // (1.mant) >> shift with RNE, shift = kSubShiftBase - exponent clamped to [1, 31];
      // f32 zeros/subnormals get shift 31 and round to 0 (their true value is far below).
      const auto exp = hn::ShiftRight<23>(abs);
      const auto shift_i =
          hn::Min(hn::Max(hn::Sub(hn::Set(di, kSubShiftBase), exp), hn::Set(di, 1)), hn::Set(di, 31));
      const auto shift = hn::BitCast(du, shift_i);
      const auto mant = hn::Or(hn::And(abs_u, hn::Set(du, 0x7FFFFFu)), hn::Set(du, 0x800000u));
      const auto q_lsb = hn::And(mant >> shift, one);
      const auto half_m1 = hn::Sub(one << hn::Sub(shift, one), one);
      const auto sub = hn::Add(hn::Add(mant, half_m1), q_lsb) >> shift;
      code = hn::IfThenElse(hn::RebindMask(du, is_sub), sub, code);
    }
    const auto is_big = hn::Gt(abs, hn::Set(di, static_cast<int32_t>(kOverflowAt) - 1));
    if (!hn::AllFalse(di, is_big)) {
      code = hn::IfThenElse(hn::RebindMask(du, is_big), hn::Set(du, kOverflowCode), code);
      auto nan = hn::Set(du, kNaNBase);
      if constexpr (kKeepPayload) {
        nan = hn::Or(nan, hn::And(hn::ShiftRight<kDrop>(abs_u), hn::Set(du, (1u << kM) - 1)));
      }
      code = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000))), nan, code);
    }
    const auto sign = hn::And(hn::ShiftRight<kSignShift>(bits), hn::Set(du, 1u << (kE + kM)));
    return hn::Or(code, sign);
  }
};

// Thresholds: f16 65520 (midpoint of 65504 and 2^16, ties to inf), e5m2 61440 (57344 and
// 2^16), e4m3fn 448 (everything from its max upward saturates).
using EncodeF16 = EncodeSmall<5, 10, 15, 0x477FF000u, 0x7C00u, 0x7E00u, true>;
using EncodeE5M2 = EncodeSmall<5, 2, 15, 0x47700000u, 0x7Cu, 0x7Fu, false>;
using EncodeE4M3 = EncodeSmall<4, 3, 7, 0x43E00000u, 0x7Eu, 0x7Fu, false>;

// ---- narrow -> f32 (exact); input code zero-extended in a u32 lane ----

struct DecodeBF16 {
  HWY_INLINE VU32 operator()(DU32 /*du*/, VU32 code) const { return hn::ShiftLeft<16>(code); }
};

// Sign, then |code| shifted into f32 position and rebiased. Subnormals go through an
// exact int->float conversion whose exponent is then lowered (result stays normal in f32).
// kIeee: all-ones exponent is inf/NaN (payload kept); otherwise only |code| == all-ones
// is NaN (e4m3fn) and becomes the default quiet NaN.
template <int kE, int kM, int kBias, bool kIeee, int kPreShift>
struct DecodeSmall {
  HWY_INLINE VU32 operator()(DU32 du, VU32 code_in) const {
    const DI32 di;
    const DF32 df;
    const auto code = hn::ShiftLeft<kPreShift>(code_in);  // e5m2 is the top byte of an f16
    constexpr uint32_t kMagMask = (1u << (kE + kM)) - 1;
    const auto mag = hn::And(code, hn::Set(du, kMagMask));
    const auto sign = hn::ShiftLeft<31 - kE - kM>(hn::AndNot(hn::Set(du, kMagMask), code));
    const auto exp = hn::ShiftRight<kM>(mag);
    const auto shifted = hn::ShiftLeft<23 - kM>(mag);
    const auto normal = hn::Add(shifted, hn::Set(du, static_cast<uint32_t>(127 - kBias) << 23));
    auto out = normal;
    // Zeros, subnormals, inf and NaN: blocks skipped when no lane has them.
    const auto is_low = hn::Eq(exp, hn::Zero(du));
    if (!hn::AllFalse(du, is_low)) {
      const auto as_float = hn::BitCast(du, hn::ConvertTo(df, hn::BitCast(di, mag)));
      const auto sub = hn::IfThenZeroElse(
          hn::Eq(mag, hn::Zero(du)), hn::Sub(as_float, hn::Set(du, static_cast<uint32_t>(kBias - 1 + kM) << 23)));
      out = hn::IfThenElse(is_low, sub, out);
    }
    if constexpr (kIeee) {
      const auto is_top = hn::Eq(exp, hn::Set(du, (1u << kE) - 1));
      if (!hn::AllFalse(du, is_top)) out = hn::IfThenElse(is_top, hn::Or(shifted, hn::Set(du, 0x7F800000u)), out);
    } else {
      const auto is_nan = hn::Eq(mag, hn::Set(du, kMagMask));
      if (!hn::AllFalse(du, is_nan)) out = hn::IfThenElse(is_nan, hn::Set(du, 0x7FC00000u), out);
    }
    return hn::Or(out, sign);
  }
};

using DecodeF16 = DecodeSmall<5, 10, 15, true, 0>;
using DecodeE5M2 = DecodeSmall<5, 10, 15, true, 8>;
using DecodeE4M3 = DecodeSmall<4, 3, 7, false, 0>;

// ---- the loop: load TIn as u32 lanes, apply op, store as TOut ----

template <typename T>
HWY_INLINE VU32 LoadAsU32(DU32 du, const T* HWY_RESTRICT p) {
  if constexpr (sizeof(T) == 4) {
    return hn::BitCast(du, hn::LoadU(DF32(), reinterpret_cast<const float*>(p)));
  } else if constexpr (sizeof(T) == 2) {
    return hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint16_t, DU32>(), reinterpret_cast<const uint16_t*>(p)));
  } else {
    return hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint8_t, DU32>(), reinterpret_cast<const uint8_t*>(p)));
  }
}

// Lanes hold values that fit in T, so the saturating i32 demotions are exact.
template <typename T>
HWY_INLINE void StoreFromU32(DU32 du, VU32 v, T* HWY_RESTRICT p) {
  const DI32 di;
  if constexpr (sizeof(T) == 4) {
    hn::StoreU(hn::BitCast(DF32(), v), DF32(), reinterpret_cast<float*>(p));
  } else if constexpr (sizeof(T) == 2) {
    const hn::Rebind<uint16_t, DU32> d16;
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, v)), d16, reinterpret_cast<uint16_t*>(p));
  } else {
    const hn::Rebind<uint8_t, DU32> d8;
    hn::StoreU(hn::DemoteTo(d8, hn::BitCast(di, v)), d8, reinterpret_cast<uint8_t*>(p));
  }
}

// Outputs of at least this many bytes per call are written with non-temporal stores:
// they exceed the 1 MiB L2 anyway, and skipping the read-for-ownership of each
// destination line saves up to 4/6 of the traffic of a decode (2 B read, 4 B written).
constexpr size_t kStreamMinBytes = size_t{4} << 20;

// Converts `count` (< one vector) elements through zero-padded stack buffers.
template <typename TIn, typename TOut, class Op>
HWY_INLINE void PartialVector(const TIn* HWY_RESTRICT src, TOut* HWY_RESTRICT dst, size_t count, Op op) {
  const DU32 du;
  // HWY_MAX_BYTES / 4 is the most u32 lanes any target has.
  HWY_ALIGN TIn in_buf[HWY_MAX_BYTES / 4] = {};
  HWY_ALIGN TOut out_buf[HWY_MAX_BYTES / 4];
  std::memcpy(in_buf, src, count * sizeof(TIn));
  StoreFromU32(du, op(du, LoadAsU32(du, in_buf)), out_buf);
  std::memcpy(dst, out_buf, count * sizeof(TOut));
}

// Non-temporal variant of StoreFromU32; p is aligned to the stored vector's size.
template <typename T>
HWY_INLINE void StreamFromU32(DU32 du, VU32 v, T* HWY_RESTRICT p) {
  const DI32 di;
  if constexpr (sizeof(T) == 4) {
    hn::Stream(hn::BitCast(DF32(), v), DF32(), reinterpret_cast<float*>(p));
  } else if constexpr (sizeof(T) == 2) {
    const hn::Rebind<uint16_t, DU32> d16;
    hn::Stream(hn::DemoteTo(d16, hn::BitCast(di, v)), d16, reinterpret_cast<uint16_t*>(p));
  } else {
    const hn::Rebind<uint8_t, DU32> d8;
    hn::Stream(hn::DemoteTo(d8, hn::BitCast(di, v)), d8, reinterpret_cast<uint8_t*>(p));
  }
}

// dst[i] = op(src[i]) for n elements; 4 vectors per iteration, then single vectors,
// then a zero-padded stack copy for the last < Lanes elements.
template <typename TIn, typename TOut, class Op>
HWY_INLINE void Transform(const TIn* HWY_RESTRICT src, TOut* HWY_RESTRICT dst, size_t n, Op op) {
  const DU32 du;
  const size_t N = hn::Lanes(du);
  size_t i = 0;
  // Streaming needs whole 16-byte (or wider) stores: x86 Stream of a narrower partial
  // vector would write past it, so AVX2's 8-byte fp8 vectors keep ordinary stores.
  const size_t out_vec_bytes = N * sizeof(TOut);
  if (n * sizeof(TOut) >= kStreamMinBytes && (out_vec_bytes >= 16 || N == 1)) {
    // Head: elements up to the first output-vector-aligned address.
    const size_t misalign = reinterpret_cast<uintptr_t>(dst) % out_vec_bytes;
    if (misalign != 0 && misalign % sizeof(TOut) == 0) {
      const size_t head = (out_vec_bytes - misalign) / sizeof(TOut);
      PartialVector(src, dst, head, op);
      i = head;
    }
    if (reinterpret_cast<uintptr_t>(dst + i) % out_vec_bytes == 0) {
      for (; i + 4 * N <= n; i += 4 * N) {
        const VU32 v0 = LoadAsU32(du, src + i);
        const VU32 v1 = LoadAsU32(du, src + i + N);
        const VU32 v2 = LoadAsU32(du, src + i + 2 * N);
        const VU32 v3 = LoadAsU32(du, src + i + 3 * N);
        StreamFromU32(du, op(du, v0), dst + i);
        StreamFromU32(du, op(du, v1), dst + i + N);
        StreamFromU32(du, op(du, v2), dst + i + 2 * N);
        StreamFromU32(du, op(du, v3), dst + i + 3 * N);
      }
      hwy::FlushStream();  // order the non-temporal stores before anything that follows
    }
  }
  for (; i + 4 * N <= n; i += 4 * N) {
    const VU32 v0 = LoadAsU32(du, src + i);
    const VU32 v1 = LoadAsU32(du, src + i + N);
    const VU32 v2 = LoadAsU32(du, src + i + 2 * N);
    const VU32 v3 = LoadAsU32(du, src + i + 3 * N);
    StoreFromU32(du, op(du, v0), dst + i);
    StoreFromU32(du, op(du, v1), dst + i + N);
    StoreFromU32(du, op(du, v2), dst + i + 2 * N);
    StoreFromU32(du, op(du, v3), dst + i + 3 * N);
  }
  for (; i + N <= n; i += N) StoreFromU32(du, op(du, LoadAsU32(du, src + i)), dst + i);
  if (i < n) PartialVector(src + i, dst + i, n - i, op);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // NIBBLE_KERNELS_CONVERT_INL_H_ (per-target include guard)
