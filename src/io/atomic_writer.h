// AtomicWriter: writes <path>.tmp, then fsync and rename on Commit(); a writer
// destroyed before Commit() removes the temporary, so no half-written output stays.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace nibble::io {

class AtomicWriter {
 public:
  // Throws IoError when the temporary cannot be created.
  explicit AtomicWriter(std::string path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void Write(std::span<const uint8_t> bytes);
  void Write(const void* data, size_t n) { Write({static_cast<const uint8_t*>(data), n}); }
  void WriteZeros(size_t n);
  uint64_t bytes_written() const { return written_; }
  // fsync, close and rename onto the final path. Throws IoError on failure.
  void Commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace nibble::io
