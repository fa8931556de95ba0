// Allocator: 64-byte aligned blocks, counting live and peak bytes, so every
// command can report the memory it really used (C4).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace nibble {

inline constexpr size_t kAlignment = 64;

class Allocator {
 public:
  Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Returns 64-byte aligned memory of at least num_bytes (nullptr for 0 bytes).
  // Throws std::bad_alloc when the system has no memory.
  void* Allocate(size_t num_bytes);
  void Free(void* p, size_t num_bytes) noexcept;

  size_t live_bytes() const { return live_.load(std::memory_order_relaxed); }
  size_t peak_bytes() const { return peak_.load(std::memory_order_relaxed); }
  uint64_t num_allocations() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<size_t> live_{0};
  std::atomic<size_t> peak_{0};
  std::atomic<uint64_t> count_{0};
};

}  // namespace nibble
