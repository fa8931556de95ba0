// libFuzzer target: the llama2.c checkpoint parser on the whole input, and the tokenizer
// parser on input[2:] with vocab_size = 1 + (u16 from input[0:2]) % 1024. Any
// nibble::Error is an accepted outcome; a crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "io/llama2c.h"
#include "nibble/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  volatile uint8_t sink = 0;
  try {
    const auto ck = nibble::io::Llama2cCheckpoint::Parse({data, size}, "fuzz.bin");
    for (const auto& t : ck.tensors())
      if (!t.data.empty()) sink = static_cast<uint8_t>(sink + t.data.front() + t.data.back());
  } catch (const nibble::Error&) {
  }
  if (size >= 2) {
    const int32_t vocab_size = 1 + (data[0] | data[1] << 8) % 1024;
    try {
      const auto tok = nibble::io::Llama2cTokenizer::Parse({data + 2, size - 2}, "fuzz_tok.bin", vocab_size);
      if (tok.pieces.size() != static_cast<size_t>(vocab_size)) __builtin_trap();
    } catch (const nibble::Error&) {
    }
  }
  (void)sink;
  return 0;
}
