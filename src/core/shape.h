// Shape: up to kMaxRank extents, row-major, with element counts checked for overflow.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace nibble {

inline constexpr int kMaxRank = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::span<const int64_t> dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  std::span<const int64_t> dims() const { return {dims_.data(), static_cast<size_t>(rank_)}; }
  // Product of the extents (1 for rank 0). Throws ShapeError on overflow past 2^62.
  int64_t NumElems() const;
  // "[512, 64]"
  std::string ToString() const;
  bool operator==(const Shape& o) const;

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

// Checked product of extents: throws ShapeError naming `what` on a negative
// extent or an element count above 2^62.
int64_t CheckedNumElems(std::span<const int64_t> dims, const std::string& what);

}  // namespace nibble
