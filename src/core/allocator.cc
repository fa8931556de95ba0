// Counting aligned allocator.
#include "core/allocator.h"

#include <cstdlib>
#include <new>

namespace nibble {

void* Allocator::Allocate(size_t num_bytes) {
  if (num_bytes == 0) return nullptr;
  const size_t rounded = (num_bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < num_bytes) throw std::bad_alloc();
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  const size_t live = live_.fetch_add(num_bytes, std::memory_order_relaxed) + num_bytes;
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (live > peak && !peak_.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void Allocator::Free(void* p, size_t num_bytes) noexcept {
  if (p == nullptr) return;
  std::free(p);
  live_.fetch_sub(num_bytes, std::memory_order_relaxed);
}

}  // namespace nibble
