// PagedArena: O_TMPFILE (or mkstemp + unlink) in the chosen directory, ftruncate, mmap
// MAP_SHARED.
#include "optim/paged_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "core/check.h"
#include "nibble/error.h"

namespace nibble::optim {

PagedArena::PagedArena(const std::string& dir_in, size_t bytes) {
  const std::string dir = dir_in.empty() ? "." : dir_in;
  size_ = PagedRegionBytes(std::max<size_t>(bytes, 1));
  fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ < 0) {  // file systems without O_TMPFILE: a named file, unlinked at once
    std::string path = dir + "/.nibble-paged-optim-XXXXXX";
    std::vector<char> buf(path.begin(), path.end());
    buf.push_back('\0');
    fd_ = ::mkstemp(buf.data());
    if (fd_ >= 0) ::unlink(buf.data());
  }
  if (fd_ < 0)
    throw IoError(fmt::format("{}: cannot create the paged optimizer state file: {}", dir, std::strerror(errno)));
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
    const int e = errno;
    ::close(fd_);
    throw IoError(fmt::format("{}: cannot size the paged optimizer state file to {} bytes: {}", dir, size_,
                              std::strerror(e)));
  }
  base_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (base_ == MAP_FAILED) {
    const int e = errno;
    ::close(fd_);
    throw IoError(fmt::format("{}: cannot map the paged optimizer state file ({} bytes): {}", dir, size_,
                              std::strerror(e)));
  }
}

PagedArena::~PagedArena() {
  ::munmap(base_, size_);
  ::close(fd_);
}

void* PagedArena::Take(size_t bytes) {
  const size_t need = PagedRegionBytes(bytes);
  NB_CHECK(used_ + need <= size_, "paged arena: {} + {} bytes exceed {}", used_, need, size_);
  void* p = static_cast<char*>(base_) + used_;
  used_ += need;
  return p;
}

bool PagedArena::OnTmpfs(const std::string& dir) noexcept {
  struct statfs s {};
  constexpr long kTmpfsMagic = 0x01021994;
  return ::statfs(dir.empty() ? "." : dir.c_str(), &s) == 0 && static_cast<long>(s.f_type) == kTmpfsMagic;
}

void PagedArena::WillNeed(const void* p, size_t bytes) noexcept {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t e = reinterpret_cast<uintptr_t>(p) + bytes;
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_WILLNEED);
}

}  // namespace nibble::optim
