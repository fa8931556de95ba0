// libFuzzer target: the parsing issue 12 added on the way in and out of a user's disk:
// config/tokenizer JSON objects with located errors (io::ParseJsonObject) and the
// temporary-output names the stale-temporary cleanup reads a pid from
// (io::TemporaryOwner). Any nibble::Error is an accepted outcome; a crash, a sanitizer
// report, a non-object accepted, or a pid read from a name that does not hold it is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "io/atomic_writer.h"
#include "io/text_file.h"
#include "nibble/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto j = nibble::io::ParseJsonObject(text, "fuzz.json", "config.json");
    if (!j.is_object()) __builtin_trap();
  } catch (const nibble::Error&) {
  }
  // The same bytes as a directory entry beside OUT "model".
  if (const auto pid = nibble::io::TemporaryOwner("model", text)) {
    if (*pid <= 0) __builtin_trap();
    const std::string digits = std::to_string(*pid);
    if (text.substr(std::string_view("model.nibble-tmp-").size(), digits.size()) != digits) __builtin_trap();
  }
  return 0;
}
