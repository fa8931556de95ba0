// libFuzzer target for the GGUF reader: any bytes must either parse or throw a
// nibble::Error; a crash, a sanitizer report or any other exception is a finding.
// Seeds: tests/fuzz/corpus/gguf/ (see docs/FUZZING.md).
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/gguf.h"
#include "nibble/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const nibble::io::GgufFile f = nibble::io::GgufFile::Parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    // Touch what a caller would use, so the spans are checked by ASan too.
    uint64_t sum = f.metadata().size();
    for (const auto& t : f.tensors())
      for (uint8_t b : t.data) sum += b;
    volatile uint64_t sink = sum;
    (void)sink;
  } catch (const nibble::Error&) {
    // Rejected cleanly: the expected outcome for most inputs.
  }
  return 0;
}
