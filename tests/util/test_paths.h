// Where tests find shared data and goldens; a missing file fails the test (never skips).
#pragma once

#include <string>

namespace nibble::test {

inline std::string SharedData(const std::string& rel) { return std::string(NIBBLE_SHARED_DATA_DIR) + "/" + rel; }
inline std::string Golden(const std::string& rel) { return std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/" + rel; }
inline std::string SourcePath(const std::string& rel) { return std::string(NIBBLE_SOURCE_DIR) + "/" + rel; }

}  // namespace nibble::test
