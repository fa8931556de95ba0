// Tensor (owns 64-byte aligned memory from an Allocator, move-only) and the
// borrowing views TensorView / ConstTensorView (pointer, dtype, shape; row-major).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace nibble {

struct ConstTensorView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;

  int64_t NumElems() const { return shape.NumElems(); }
  size_t NumBytes() const { return DTypeBytes(dtype, static_cast<uint64_t>(NumElems())); }
  // The data as f32, for a view the caller knows is f32 (norms, biases, f32 matrices).
  const float* f32() const { return static_cast<const float*>(data); }
  template <typename T>
  std::span<const T> As() const {
    return {static_cast<const T*>(data), NumBytes() / sizeof(T)};
  }
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;

  int64_t NumElems() const { return shape.NumElems(); }
  size_t NumBytes() const { return DTypeBytes(dtype, static_cast<uint64_t>(NumElems())); }
  operator ConstTensorView() const { return {data, dtype, shape}; }
  template <typename T>
  std::span<T> As() const {
    return {static_cast<T*>(data), NumBytes() / sizeof(T)};
  }
};

class Tensor {
 public:
  Tensor() = default;
  // Allocates (uninitialised) storage for `shape` elements of `dtype` from `alloc`.
  Tensor(Allocator& alloc, DType dtype, const Shape& shape);
  ~Tensor() { Release(); }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor(Tensor&& o) noexcept { *this = std::move(o); }
  Tensor& operator=(Tensor&& o) noexcept;

  void* data() { return data_; }
  const void* data() const { return data_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  size_t num_bytes() const { return num_bytes_; }
  TensorView view() { return {data_, dtype_, shape_}; }
  ConstTensorView view() const { return {data_, dtype_, shape_}; }

 private:
  void Release() noexcept;

  Allocator* alloc_ = nullptr;
  void* data_ = nullptr;
  size_t num_bytes_ = 0;
  DType dtype_ = DType::kF32;
  Shape shape_;
};

}  // namespace nibble
