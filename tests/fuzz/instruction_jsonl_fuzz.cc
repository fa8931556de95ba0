// libFuzzer target: the instruction-data JSONL parser (train/sft_data.h) on the whole
// input. Any nibble::Error is an accepted outcome; a crash, a sanitizer report, or a
// parsed file with no records or a record without its line number is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nibble/error.h"
#include "train/sft_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = nibble::train::ParseInstructionJsonl(
        "fuzz.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
    if (f.records.empty()) __builtin_trap();
    for (const auto& r : f.records)
      if (r.line == 0) __builtin_trap();
  } catch (const nibble::Error&) {
  }
  return 0;
}
