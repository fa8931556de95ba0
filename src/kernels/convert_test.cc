// Checks every compiled Highway target of the bulk conversions (kernels/convert.h)
// against the scalar Ref (core/float_convert.h), bit for bit, on every narrow code,
// boundary and tie sets, 10^6 random f32 patterns, odd lengths, and the parallel wrappers.
#include "kernels/convert.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/float_convert.h"
#include "hwy/tests/hwy_gtest.h"

namespace nibble::kernels {
namespace {

constexpr size_t kTolMismatchedBytes = 0;  // kernels must equal Ref bit for bit (C9)
constexpr size_t kNumRandom = 1'000'000;    // random f32 bit patterns per format and target
constexpr DType kNarrow[] = {DType::kF16, DType::kBF16, DType::kTF32, DType::kF8E4M3FN, DType::kF8E5M2};

size_t ElemBytes(DType t) { return GetDTypeInfo(t).block_bytes; }

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// f32 inputs that stress rounding: every exponent with edge mantissas, midpoints of
// each format (+-1 ulp) at the rounding bit positions, NaN payloads, then random bits.
std::vector<float> StressInputs() {
  std::vector<uint32_t> bits;
  for (uint32_t sign : {0u, 0x80000000u})
    for (uint32_t e = 0; e < 256; ++e)
      for (uint32_t drop : {13u, 16u, 20u, 21u})
        for (uint32_t m : {0u, 1u, 0x7FFFFFu, 0x400000u, (1u << (drop - 1)), (1u << (drop - 1)) - 1,
                           (1u << (drop - 1)) + 1, (3u << (drop - 1)), (3u << (drop - 1)) - 1,
                           (3u << (drop - 1)) + 1})
          bits.push_back(sign | (e << 23) | (m & 0x7FFFFFu));
  for (int b = 0; b < 23; ++b) bits.insert(bits.end(), {0x7F800000u | (1u << b), 0xFF800000u | (1u << b)});
  uint64_t state = 42;
  while (bits.size() < kNumRandom + 30000) bits.push_back(static_cast<uint32_t>(SplitMix64(state) >> 32));
  std::vector<float> out(bits.size());
  std::memcpy(out.data(), bits.data(), bits.size() * sizeof(uint32_t));
  return out;
}

// Byte-compares a kernel's output with the Ref's, reporting the first mismatch.
size_t CountMismatches(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, size_t elem_bytes,
                       const char* what) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i] && bad++ == 0)
      ADD_FAILURE() << what << ": first mismatch at element " << i / elem_bytes << " (byte " << i << ")";
  }
  return bad;
}

class ConvertTest : public hwy::TestWithParamTarget {};
HWY_TARGET_INSTANTIATE_TEST_SUITE_P(ConvertTest);

TEST_P(ConvertTest, FromF32MatchesRefOnStressAndRandom) {
  const std::vector<float> in = StressInputs();
  for (DType t : kNarrow) {
    const size_t nb = in.size() * ElemBytes(t);
    std::vector<uint8_t> got(nb, 0xAA), want(nb, 0x55);
    ConvertFromF32(t, in.data(), got.data(), in.size());
    ConvertFromF32Ref(t, in.data(), want.data(), in.size());
    EXPECT_EQ(CountMismatches(got, want, ElemBytes(t), DTypeName(t).data()), kTolMismatchedBytes) << DTypeName(t);
  }
}

TEST_P(ConvertTest, FromF32MatchesRefOnEveryNarrowValue) {
  // Every f16 and bf16 pattern decoded to f32 (all exact values, NaNs, infinities), so
  // each representable value and its NaN classes go through the encoders.
  std::vector<float> in;
  for (uint32_t c = 0; c < 65536; ++c) {
    in.push_back(F16ToF32(static_cast<uint16_t>(c)));
    in.push_back(BF16ToF32(static_cast<uint16_t>(c)));
  }
  for (DType t : kNarrow) {
    const size_t nb = in.size() * ElemBytes(t);
    std::vector<uint8_t> got(nb, 0xAA), want(nb, 0x55);
    ConvertFromF32(t, in.data(), got.data(), in.size());
    ConvertFromF32Ref(t, in.data(), want.data(), in.size());
    EXPECT_EQ(CountMismatches(got, want, ElemBytes(t), DTypeName(t).data()), kTolMismatchedBytes) << DTypeName(t);
  }
}

TEST_P(ConvertTest, ToF32MatchesRefOnEveryCode) {
  // All 2^16 f16/bf16 patterns and all 256 fp8 codes; tf32 on the stress inputs rounded to tf32.
  std::vector<uint16_t> all16(65536);
  for (uint32_t c = 0; c < 65536; ++c) all16[c] = static_cast<uint16_t>(c);
  std::vector<uint8_t> all8(256);
  for (uint32_t c = 0; c < 256; ++c) all8[c] = static_cast<uint8_t>(c);
  std::vector<float> tf32 = StressInputs();
  for (float& f : tf32) f = F32ToTF32(f);
  for (DType t : kNarrow) {
    const void* src = ElemBytes(t) == 2 ? static_cast<const void*>(all16.data())
                      : ElemBytes(t) == 1 ? static_cast<const void*>(all8.data())
                                          : static_cast<const void*>(tf32.data());
    const size_t n = ElemBytes(t) == 2 ? all16.size() : ElemBytes(t) == 1 ? all8.size() : tf32.size();
    std::vector<uint8_t> got(n * 4, 0xAA), want(n * 4, 0x55);
    ConvertToF32(t, src, reinterpret_cast<float*>(got.data()), n);
    ConvertToF32Ref(t, src, reinterpret_cast<float*>(want.data()), n);
    EXPECT_EQ(CountMismatches(got, want, 4, DTypeName(t).data()), kTolMismatchedBytes) << DTypeName(t);
  }
}

TEST_P(ConvertTest, OddLengthsTouchOnlyTheirElements) {
  // Tails: the kernel writes exactly n elements; bytes past the end keep a canary.
  const std::vector<float> in = StressInputs();
  constexpr uint8_t kCanary = 0xC3;
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{33}, size_t{1000}}) {
    for (DType t : kNarrow) {
      const size_t eb = ElemBytes(t), offset = 3;  // odd offset: unaligned src and dst
      std::vector<uint8_t> got((n + 16) * eb, kCanary), want((n + 16) * eb, kCanary);
      ConvertFromF32(t, in.data() + offset, got.data() + eb, n);
      ConvertFromF32Ref(t, in.data() + offset, want.data() + eb, n);
      EXPECT_EQ(CountMismatches(got, want, eb, "from f32"), kTolMismatchedBytes) << DTypeName(t) << " n=" << n;
      // Back to f32 from the narrow codes just written.
      std::vector<uint8_t> back((n + 16) * 4, kCanary), back_ref((n + 16) * 4, kCanary);
      ConvertToF32(t, want.data() + eb, reinterpret_cast<float*>(back.data() + 4), n);
      ConvertToF32Ref(t, want.data() + eb, reinterpret_cast<float*>(back_ref.data() + 4), n);
      EXPECT_EQ(CountMismatches(back, back_ref, 4, "to f32"), kTolMismatchedBytes) << DTypeName(t) << " n=" << n;
    }
  }
}

TEST_P(ConvertTest, ParallelEqualsSerial) {
  // 2 and 3 threads on a length that is not a multiple of the 64-element chunk.
  const std::vector<float> in = StressInputs();
  const size_t n = in.size() - 5;
  for (int threads : {2, 3}) {
    for (DType t : kNarrow) {
      const size_t eb = ElemBytes(t);
      std::vector<uint8_t> par(n * eb, 0xAA), ser(n * eb, 0x55);
      ConvertFromF32Parallel(threads, t, in.data(), par.data(), n);
      ConvertFromF32Ref(t, in.data(), ser.data(), n);
      EXPECT_EQ(CountMismatches(par, ser, eb, "from f32 parallel"), kTolMismatchedBytes) << DTypeName(t);
      std::vector<uint8_t> back(n * 4, 0xAA), back_ref(n * 4, 0x55);
      ConvertToF32Parallel(threads, t, ser.data(), reinterpret_cast<float*>(back.data()), n);
      ConvertToF32Ref(t, ser.data(), reinterpret_cast<float*>(back_ref.data()), n);
      EXPECT_EQ(CountMismatches(back, back_ref, 4, "to f32 parallel"), kTolMismatchedBytes) << DTypeName(t);
    }
  }
}

TEST_P(ConvertTest, LargeArraysTakeTheStreamingPath) {
  // >= 4 MiB of output per call switches to non-temporal stores (kStreamMinBytes in
  // convert-inl.h); each call writes just over that. dst is offset by one element so
  // the alignment head runs too.
  constexpr size_t kStreamBytes = (size_t{4} << 20) + 64;
  std::vector<float> in(kStreamBytes);
  uint64_t state = 99;
  for (float& f : in) {
    const uint32_t b = static_cast<uint32_t>(SplitMix64(state) >> 32);
    std::memcpy(&f, &b, 4);
  }
  for (DType t : kNarrow) {
    const size_t eb = ElemBytes(t), n = kStreamBytes / eb;
    std::vector<uint8_t> got((n + 1) * eb, 0xAA), want((n + 1) * eb, 0xAA);
    ConvertFromF32(t, in.data(), got.data() + eb, n);
    ConvertFromF32Ref(t, in.data(), want.data() + eb, n);
    EXPECT_EQ(CountMismatches(got, want, eb, "from f32 streaming"), kTolMismatchedBytes) << DTypeName(t);
    const size_t n_back = kStreamBytes / 4;
    std::vector<uint8_t> back((n_back + 1) * 4, 0xAA), back_ref((n_back + 1) * 4, 0xAA);
    ConvertToF32(t, want.data() + eb, reinterpret_cast<float*>(back.data() + 4), n_back);
    ConvertToF32Ref(t, want.data() + eb, reinterpret_cast<float*>(back_ref.data() + 4), n_back);
    EXPECT_EQ(CountMismatches(back, back_ref, 4, "to f32 streaming"), kTolMismatchedBytes) << DTypeName(t);
  }
}

TEST(Convert, IsConvertibleListsTheDenseFloats) {
  for (int i = 0; i < kNumDTypes; ++i) {
    const DType t = static_cast<DType>(i);
    const bool want = t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kTF32 ||
                      t == DType::kF8E4M3FN || t == DType::kF8E5M2;
    EXPECT_EQ(IsConvertible(t), want) << DTypeName(t);
  }
}

}  // namespace
}  // namespace nibble::kernels
