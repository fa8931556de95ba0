// Paged optimizer state on a CPU (spec bnb-compatible-quantization.md §4.3.2): one sparse
// file, pre-sized and mapped MAP_SHARED, holding large state tensors in page-aligned
// regions. Its pages are file-backed, so the kernel writes cold ones back to the file
// and drops them under memory pressure (a cgroup limit, or a machine without swap) and
// faults them in again when touched: the analogue of bitsandbytes' CUDA unified memory.
// The file is unlinked as soon as it is open, so nothing is left behind by a crash.
#pragma once

#include <cstddef>
#include <string>

namespace nibble::optim {

class PagedArena {
 public:
  // Region alignment: one page. (The spec suggests 2 MiB; measured on Linux 6.18 / ext4,
  // whose page cache allocates large folios, touching the small absmax arrays then made
  // whole 2 MiB regions resident: 1.2 GiB more RSS for SmolLM2's 211 tensors.)
  static constexpr size_t kAlign = 4096;

  // A mapping of `bytes` (rounded up to kAlign) backed by an unnamed file in `dir` (the
  // current directory when empty); every byte reads 0 until written. IoError naming the
  // directory when the file cannot be made, sized or mapped.
  PagedArena(const std::string& dir, size_t bytes);
  ~PagedArena();
  PagedArena(const PagedArena&) = delete;
  PagedArena& operator=(const PagedArena&) = delete;

  // The next region of `bytes`, kAlign-aligned; NB_CHECK that it fits.
  void* Take(size_t bytes);
  size_t size() const { return size_; }

  // True when `dir` is on a tmpfs (RAM): pages there leave memory only through swap, so a
  // paged optimizer gains nothing on a machine without it.
  static bool OnTmpfs(const std::string& dir) noexcept;

  // Hints for the step: read [p, p + bytes) ahead (MADV_WILLNEED), and process it in order.
  static void WillNeed(const void* p, size_t bytes) noexcept;

 private:
  int fd_ = -1;
  void* base_ = nullptr;
  size_t size_ = 0, used_ = 0;
};

// Bytes a region of `bytes` takes in an arena (rounded up to kAlign).
inline size_t PagedRegionBytes(size_t bytes) {
  return (bytes + PagedArena::kAlign - 1) / PagedArena::kAlign * PagedArena::kAlign;
}

}  // namespace nibble::optim
