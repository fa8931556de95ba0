// libFuzzer target: a safetensors file read as a quantized Llama Linear in every layout
// nibble accepts (bitsandbytes 4-bit/8-bit, nibble formats), then dequantized and run
// through one GEMV. Any nibble::Error is an accepted outcome; a crash, sanitizer report
// or other exception is a bug. The corpus holds real NF4+double-quant, FP4, LLM.int8()
// and int4 files written by nibble (tests/fuzz/corpus/bnb_checkpoint).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/bnb_checkpoint.h"
#include "io/safetensors.h"
#include "nibble/error.h"
#include "quant/qgemv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = nibble::io::SafetensorsFile::Parse({data, size}, "fuzz.safetensors");
    const nibble::io::RawLookup lookup = [&f](std::string_view name) -> std::optional<nibble::io::RawTensor> {
      const auto* t = f.FindTensor(name);
      if (t == nullptr) return std::nullopt;
      return nibble::io::RawTensor{t->dtype, t->shape, t->data};
    };
    nibble::Allocator alloc;
    nibble::io::QuantizationConfig cfg;
    if (!nibble::io::IsQuantizedLinear(lookup, "P")) return 0;
    const nibble::quant::QTensor q = nibble::io::ReadQuantizedLinear(lookup, "P", "fuzz", cfg, alloc);
    if (q.NumElems() > (int64_t{1} << 20)) return 0;  // valid but too large to run quickly
    std::vector<float> w(static_cast<size_t>(q.NumElems()));
    nibble::quant::DequantizeMatrix(q, w.data(), 1);
    std::vector<float> x(static_cast<size_t>(q.cols()), 0.5f), y(static_cast<size_t>(q.rows()));
    nibble::quant::QGemv(1, x.data(), q, y.data(), 1);
  } catch (const nibble::Error&) {
  }
  return 0;
}
