// Temp-file-then-rename writer.
#include "io/atomic_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/core.h>

#include "nibble/error.h"

namespace nibble::io {

AtomicWriter::AtomicWriter(std::string path) : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(fmt::format("{}: cannot create: {}", tmp_path_, std::strerror(errno)));
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

void AtomicWriter::Write(std::span<const uint8_t> bytes) {
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(fmt::format("{}: write failed: {}", tmp_path_, std::strerror(errno)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  written_ += bytes.size();
}

void AtomicWriter::WriteZeros(size_t n) {
  static const std::vector<uint8_t> zeros(4096, 0);
  while (n > 0) {
    const size_t k = n < zeros.size() ? n : zeros.size();
    Write({zeros.data(), k});
    n -= k;
  }
}

void AtomicWriter::Commit() {
  if (::fsync(fd_) != 0) throw IoError(fmt::format("{}: fsync failed: {}", tmp_path_, std::strerror(errno)));
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
    throw IoError(fmt::format("{}: close failed: {}", tmp_path_, std::strerror(errno)));
  }
  fd_ = -1;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp_path_.c_str());
    throw IoError(fmt::format("{}: cannot rename from {}: {}", path_, tmp_path_, std::strerror(e)));
  }
}

}  // namespace nibble::io
