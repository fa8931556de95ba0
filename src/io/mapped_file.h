// MappedFile: a read-only mmap of a whole file, held by shared_ptr so views into
// it stay valid as long as anyone uses them (C4).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace nibble::io {

class MappedFile {
 public:
  // Throws IoError naming the path when it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Advises the kernel that the whole pages inside `mapped` (bytes of a read-only file
// mapping) are not needed now: they leave the resident set and are read from the file
// again if touched (madvise MADV_DONTNEED). Full fine-tuning calls it once the weights are
// copied into the trainer's f32 buffer. Advice only: a failure changes nothing.
void DropPages(std::span<const uint8_t> mapped) noexcept;

}  // namespace nibble::io
