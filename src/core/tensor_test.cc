// Tensor, Allocator, Shape and the RSS probe. References: the allocator's own
// contract (live/peak bytes are exact sums of what was requested) and /proc.
#include <gtest/gtest.h>

#include <cstring>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/memory_probe.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "nibble/error.h"

namespace nibble {
namespace {

TEST(Allocator, CountsLiveAndPeakBytesExactly) {
  Allocator a;
  {
    Tensor x(a, DType::kF32, Shape{3, 5});    // 60 bytes
    Tensor y(a, DType::kBF16, Shape{1000});   // 2000 bytes
    EXPECT_EQ(a.live_bytes(), 2060u);
    EXPECT_EQ(a.peak_bytes(), 2060u);
    EXPECT_EQ(a.num_allocations(), 2u);
  }
  EXPECT_EQ(a.live_bytes(), 0u);
  EXPECT_EQ(a.peak_bytes(), 2060u);
  Tensor z(a, DType::kF64, Shape{10});
  EXPECT_EQ(a.live_bytes(), 80u);
  EXPECT_EQ(a.peak_bytes(), 2060u);  // the high-water mark stays
}

TEST(Tensor, IsAlignedTo64BytesAndMoveOnly) {
  Allocator a;
  std::vector<Tensor> ts;
  for (int n : {1, 3, 17, 100, 4097}) {
    ts.emplace_back(a, DType::kU8, Shape{n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(ts.back().data()) % kAlignment, 0u) << n;
  }
  static_assert(!std::is_copy_constructible_v<Tensor>);
  static_assert(std::is_nothrow_move_constructible_v<Tensor>);
  Tensor t(a, DType::kF32, Shape{4});
  void* p = t.data();
  Tensor u = std::move(t);
  EXPECT_EQ(u.data(), p);
  EXPECT_EQ(t.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  const size_t live = a.live_bytes();
  u = Tensor(a, DType::kF32, Shape{8});  // frees the old 16 bytes, adds 32
  EXPECT_EQ(a.live_bytes(), live - 16 + 32);
}

TEST(Tensor, ViewsDescribeTheSameBytes) {
  Allocator a;
  Tensor t(a, DType::kF16, Shape{2, 3});
  TensorView v = t.view();
  EXPECT_EQ(v.NumBytes(), 12u);
  EXPECT_EQ(v.NumElems(), 6);
  ConstTensorView c = v;
  EXPECT_EQ(c.data, t.data());
  EXPECT_EQ(c.As<uint16_t>().size(), 6u);
}

TEST(Tensor, PackedTypesNeedWholeBlocks) {
  Allocator a;
  EXPECT_EQ(Tensor(a, DType::kQ4_0, Shape{2, 64}).num_bytes(), 4u * 18u);  // 4 blocks of 32
  EXPECT_THROW(Tensor(a, DType::kQ4_0, Shape{2, 33}), ShapeError);
  EXPECT_EQ(a.live_bytes(), 0u);  // nothing leaked by the throwing constructor
}

TEST(Shape, ChecksOverflowAndNegativeExtents) {
  EXPECT_EQ(Shape({}).NumElems(), 1);
  EXPECT_EQ(Shape({0, 5}).NumElems(), 0);
  EXPECT_EQ(Shape({512, 64}).ToString(), "[512, 64]");
  EXPECT_THROW(Shape({int64_t{1} << 31, int64_t{1} << 31, 4}).NumElems(), ShapeError);
  EXPECT_THROW(Shape({-1, 3}).NumElems(), ShapeError);
  const std::vector<int64_t> nine(9, 1);
  EXPECT_THROW(Shape(std::span<const int64_t>(nine)), ShapeError);
}

TEST(MemoryProbe, SeesResidentMemoryGrow) {
  const RssSample before = ReadRss();
  ASSERT_GT(before.current_bytes, 0u);
  ASSERT_GE(before.peak_bytes, before.current_bytes);
  // Touch 64 MiB: the peak must grow by at least most of it (pages may be shared
  // with earlier freed memory, hence "most": half is a safe floor).
  constexpr size_t kBytes = size_t{64} << 20;
  std::vector<char> big(kBytes);
  std::memset(big.data(), 1, big.size());
  const RssSample after = ReadRss();
  EXPECT_GE(after.peak_bytes, before.current_bytes + kBytes / 2);
  EXPECT_EQ(big[12345], 1);
}

}  // namespace
}  // namespace nibble
