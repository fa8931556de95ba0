// A temporary directory removed with everything in it when the test ends.
#pragma once

#include <filesystem>
#include <random>
#include <string>

namespace nibble::test {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("nibble-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Entries under `dir` (not recursive) that are nibble temporaries: "<OUT>.nibble-tmp-*"
// being written, "<OUT>.nibble-old-*" being replaced. A finished or failed run leaves none.
inline int CountTemporaries(const std::filesystem::path& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    n += name.find(".nibble-tmp-") != std::string::npos || name.find(".nibble-old-") != std::string::npos;
  }
  return n;
}

}  // namespace nibble::test
