// libFuzzer target: SafetensorsFile::Parse on arbitrary bytes. Any nibble::Error is an
// accepted outcome; a crash, sanitizer report or other exception is a bug.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"
#include "nibble/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = nibble::io::SafetensorsFile::Parse({data, size}, "fuzz.safetensors");
    // Touch every view so ASan checks that each lies inside the input.
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      if (!t.data.empty()) sink = static_cast<uint8_t>(sink + t.data.front() + t.data.back());
      if (f.FindTensor(t.name) == nullptr) __builtin_trap();
    }
    (void)sink;
  } catch (const nibble::Error&) {
  }
  return 0;
}
