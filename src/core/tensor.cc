// Owning tensor: allocation and move semantics.
#include "core/tensor.h"

#include <utility>

namespace nibble {

Tensor::Tensor(Allocator& alloc, DType dtype, const Shape& shape)
    : alloc_(&alloc), dtype_(dtype), shape_(shape) {
  num_bytes_ = DTypeBytes(dtype, static_cast<uint64_t>(shape.NumElems()));
  data_ = alloc.Allocate(num_bytes_);
}

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    Release();
    alloc_ = std::exchange(o.alloc_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    num_bytes_ = std::exchange(o.num_bytes_, 0);
    dtype_ = o.dtype_;
    shape_ = o.shape_;
  }
  return *this;
}

void Tensor::Release() noexcept {
  if (alloc_ != nullptr) alloc_->Free(data_, num_bytes_);
  alloc_ = nullptr;
  data_ = nullptr;
  num_bytes_ = 0;
}

}  // namespace nibble
