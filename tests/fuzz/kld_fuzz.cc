// libFuzzer target: the KL-divergence reference file parser (io/kld_file.h) on the
// whole input, then every record it declares. Any nibble::Error is an accepted
// outcome; a crash, a sanitizer report or a record count that disagrees with the
// size check is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/kld_file.h"
#include "nibble/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = nibble::io::KldFile::Parse({data, size}, "fuzz.kld");
    std::vector<uint16_t> codes;
    std::vector<int32_t> ids;
    std::vector<float> logprobs;
    const int64_t n = f.header().NumRecords();
    if (static_cast<uint64_t>(n) * f.header().RecordBytes() > size) __builtin_trap();
    for (int64_t i = 0; i < n; ++i) f.Record(i, codes, ids, logprobs);
  } catch (const nibble::Error&) {
  }
  return 0;
}
