// Shape construction and overflow-checked element counts.
#include "core/shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nibble/error.h"

namespace nibble {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  if (dims.size() > static_cast<size_t>(kMaxRank))
    throw ShapeError(fmt::format("shape has rank {}, the most nibble supports is {}", dims.size(), kMaxRank));
  rank_ = static_cast<int>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) dims_[i] = dims[i];
}

int64_t Shape::NumElems() const { return CheckedNumElems(dims(), ToString()); }

std::string Shape::ToString() const { return fmt::format("[{}]", fmt::join(dims(), ", ")); }

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[static_cast<size_t>(i)] != o.dims_[static_cast<size_t>(i)]) return false;
  return true;
}

int64_t CheckedNumElems(std::span<const int64_t> dims, const std::string& what) {
  constexpr int64_t kLimit = int64_t{1} << 62;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) throw ShapeError(fmt::format("{}: negative extent {}", what, d));
    if (d != 0 && n > kLimit / d)
      throw ShapeError(fmt::format("{}: element count overflows (more than 2^62 elements)", what));
    n *= d;
  }
  return n;
}

}  // namespace nibble
