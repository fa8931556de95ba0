// QTensor: whole-matrix quantization (parallel over whole blocks), dequantization,
// block scales (with double quantization undone) and validation of loaded tensors.
#include "quant/qtensor.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/float_convert.h"
#include "kernels/convert.h"
#include "nibble/error.h"
#include "quant/blockwise4.h"
#include "quant/formats/dynamic8/dynamic8.h"
#include "quant/llm_int8/llm_int8.h"

namespace nibble::quant {
namespace {

template <class T>
std::span<T> NewArray(QTensor& q, Allocator& alloc, DType dt, int64_t n) {
  q.owned.emplace_back(alloc, dt, Shape{n});
  return {static_cast<T*>(q.owned.back().data()), static_cast<size_t>(n)};
}

bool IsPowerOfTwo(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

uint64_t QTensor::StorageBytes() const {
  uint64_t b = codes.size() + 4 * (scales.size() + zeros.size());
  if (nested) b += scale_codes.size() + 4 * (nested_absmax.size() + nested_map.size()) + 4;
  return b;
}

void QTensor::BlockScales(int64_t begin, int64_t end, float* out) const {
  if (nested) {
    dynamic8::ReconstructAbsmax(nested_map.data(), scale_codes.data(), nested_absmax.data(), nested_offset,
                                nested_blocksize, begin, end, out);
  } else {
    std::memcpy(out, scales.data() + begin, static_cast<size_t>(end - begin) * sizeof(float));
  }
}

void DequantizeRange(const QTensor& q, int64_t begin, int64_t end, float* out) {
  if (begin >= end) return;
  if (q.method == QuantMethod::kLlmInt8) {
    const int64_t cols = q.cols();
    for (int64_t i = begin; i < end; ++i) {
      const auto c = static_cast<float>(static_cast<int8_t>(q.codes[i]));
      out[i - begin] = (c * q.scales[i / cols]) * llm_int8::kInv127;
    }
    return;
  }
  const int64_t B = q.blocksize, b0 = begin / B, b1 = (end - 1) / B + 1;
  std::vector<float> s(static_cast<size_t>(b1 - b0));
  q.BlockScales(b0, b1, s.data());
  // Block by block (no division per element); same products as the Ref formulas.
  for (int64_t b = b0, i = begin; b < b1; ++b) {
    const int64_t stop = std::min(end, (b + 1) * B);
    const float sb = s[b - b0];
    if (q.format->code_bits == 4) {
      const float* lut = q.format->lut;
      const uint8_t* codes = q.codes.data();
      if (i < stop && (i & 1)) {
        out[i - begin] = lut[codes[i >> 1] & 0xF] * sb;
        ++i;
      }
      for (; i + 1 < stop; i += 2) {
        const uint8_t c = codes[i >> 1];
        out[i - begin] = lut[c >> 4] * sb;
        out[i + 1 - begin] = lut[c & 0xF] * sb;
      }
      if (i < stop) {
        out[i - begin] = lut[codes[i >> 1] >> 4] * sb;
        ++i;
      }
    } else if (q.format->has_zero_point) {
      const float z = q.zeros[b];
      for (; i < stop; ++i) out[i - begin] = (static_cast<float>(static_cast<int8_t>(q.codes[i])) + z) * sb;
    } else {
      for (; i < stop; ++i) out[i - begin] = static_cast<float>(static_cast<int8_t>(q.codes[i])) * sb;
    }
  }
}

QTensor QuantizeLlmInt8Stored(Allocator& alloc, const void* w, DType stored, const Shape& shape, DType dtype,
                              float threshold, int num_threads) {
  QTensor q;
  q.method = QuantMethod::kLlmInt8;
  q.shape = shape;
  q.dtype = dtype;
  q.threshold = threshold;
  const int64_t n = shape.NumElems(), rows = q.rows(), cols = q.cols();
  if (n <= 0) throw ShapeError(fmt::format("quantize: tensor of shape {} has no elements", shape.ToString()));
  q.blocksize = cols;
  auto cb = NewArray<uint8_t>(q, alloc, DType::kI8, n);
  auto scb = NewArray<float>(q, alloc, DType::kF32, rows);
  const auto* src = static_cast<const uint8_t*>(w);
  const uint64_t row_bytes = DTypeBytes(stored, static_cast<uint64_t>(cols));
#pragma omp parallel num_threads(std::max(1, num_threads))
  {
    std::vector<float> wh(static_cast<size_t>(cols));  // fp16(W) of one row, spec §5.1
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      kernels::ConvertToF32(stored, src + static_cast<uint64_t>(r) * row_bytes, wh.data(), static_cast<size_t>(cols));
      for (float& v : wh) v = F16ToF32(F32ToF16(v));
      llm_int8::QuantizeWeightRef(wh.data(), 1, cols, reinterpret_cast<int8_t*>(cb.data()) + r * cols, &scb[r]);
    }
  }
  q.codes = cb;
  q.scales = scb;
  return q;
}

QTensor QuantizeMatrix(Allocator& alloc, const float* w, const Shape& shape, DType dtype, const QuantizeSpec& spec,
                       int num_threads) {
  QTensor q;
  q.method = spec.method;
  q.format = FindBlockwiseFormat(spec.method);
  q.shape = shape;
  q.dtype = dtype;
  q.compute = spec.compute;
  q.threshold = spec.threshold;
  const int64_t n = shape.NumElems();
  const int64_t cols = q.cols();
  const int threads = std::max(1, num_threads);
  if (n <= 0) throw ShapeError(fmt::format("quantize: tensor of shape {} has no elements", shape.ToString()));
  if (spec.method == QuantMethod::kLlmInt8)
    return QuantizeLlmInt8Stored(alloc, w, DType::kF32, shape, dtype, spec.threshold, threads);
  const BlockwiseTraits& f = *q.format;
  const int64_t B = spec.blocksize > 0 ? spec.blocksize : (spec.blocksize == 0 ? cols : n);
  if (f.code_bits == 4 && (!IsPowerOfTwo(B) || B < 32 || B > 4096))
    throw ShapeError(fmt::format("quantize {}: blocksize must be a power of two in [32, 4096], got {}", f.name, B));
  if (spec.double_quant && f.code_bits != 4)
    throw ConfigError(fmt::format("quantize {}: double quantization applies to nf4 and fp4 only", f.name));
  q.blocksize = B;
  const int64_t nb = NumBlocks(n, B);
  auto codes = NewArray<uint8_t>(q, alloc, DType::kU8, CodeBytes(f.code_bits, n));
  auto scales = NewArray<float>(q, alloc, DType::kF32, nb);
  std::span<float> zeros;
  if (f.has_zero_point) zeros = NewArray<float>(q, alloc, DType::kF32, nb);
  // Chunks of whole blocks; 4-bit blocks have even sizes, so chunks start on byte boundaries.
  const int64_t per_chunk = std::max<int64_t>(1, (int64_t{1} << 16) / B);
  const int64_t nchunks = (nb + per_chunk - 1) / per_chunk;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t b0 = c * per_chunk, b1 = std::min(nb, b0 + per_chunk);
    const int64_t e0 = b0 * B, e1 = std::min(n, b1 * B);
    f.quantize(w + e0, e1 - e0, B, codes.data() + (f.code_bits == 4 ? e0 / 2 : e0), scales.data() + b0,
                   zeros.empty() ? nullptr : zeros.data() + b0);
  }
  q.codes = codes;
  q.zeros = zeros;
  if (spec.double_quant) {
    const dynamic8::NestedAbsmax na = dynamic8::CompressAbsmax(scales);
    auto sc = NewArray<uint8_t>(q, alloc, DType::kU8, nb);
    auto nab = NewArray<float>(q, alloc, DType::kF32, static_cast<int64_t>(na.nested_absmax.size()));
    auto map = NewArray<float>(q, alloc, DType::kF32, 256);
    std::copy(na.codes.begin(), na.codes.end(), sc.begin());
    std::copy(na.nested_absmax.begin(), na.nested_absmax.end(), nab.begin());
    std::copy(na.map.begin(), na.map.end(), map.begin());
    q.nested = true;
    q.scale_codes = sc;
    q.nested_absmax = nab;
    q.nested_map = map;
    q.nested_offset = na.offset;
    q.nested_blocksize = na.nested_blocksize;
  } else {
    q.scales = scales;
  }
  return q;
}

void DequantizeMatrix(const QTensor& q, float* out, int num_threads) {
  const int64_t n = q.NumElems();
  if (q.format != nullptr && q.format->code_bits == 4) {
    // Chunks of whole blocks through the Highway body (quant/blockwise4.h).
    const int64_t B = q.blocksize, nb = q.NumBlocks();
    // An even number of blocks per chunk when B is odd (checkpoints may store any B), so
    // every chunk starts on a whole code byte (e0 even).
    int64_t per_chunk = std::max<int64_t>(1, (int64_t{1} << 16) / B);
    if (B % 2 != 0) per_chunk += per_chunk % 2;
    const int64_t nchunks = (nb + per_chunk - 1) / per_chunk;
#pragma omp parallel num_threads(std::max(1, num_threads))
    {
      std::vector<float> s(static_cast<size_t>(per_chunk));
#pragma omp for schedule(static)
      for (int64_t c = 0; c < nchunks; ++c) {
        const int64_t b0 = c * per_chunk, b1 = std::min(nb, b0 + per_chunk);
        const int64_t e0 = b0 * B, e1 = std::min(n, b1 * B);
        q.BlockScales(b0, b1, s.data());
        DequantizeLut4(*q.format, q.codes.data() + e0 / 2, s.data(), e1 - e0, B, out + e0);
      }
    }
    return;
  }
  constexpr int64_t kChunk = int64_t{1} << 16;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(std::max(1, num_threads)) schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t e0 = c * kChunk, e1 = std::min(n, e0 + kChunk);
    DequantizeRange(q, e0, e1, out + e0);
  }
}

void ValidateQTensor(const QTensor& q, std::string_view where) {
  const int64_t n = q.NumElems();
  auto fail = [&](const std::string& what) { throw FormatError(fmt::format("{}: {}", where, what)); };
  if (n <= 0 || q.shape.rank() != 2) fail(fmt::format("expected a 2-D weight shape, got {}", q.shape.ToString()));
  if (q.method == QuantMethod::kLlmInt8) {
    if (static_cast<int64_t>(q.codes.size()) != n)
      fail(fmt::format("int8 weight holds {} bytes, shape {} needs {}", q.codes.size(), q.shape.ToString(), n));
    if (static_cast<int64_t>(q.scales.size()) != q.rows())
      fail(fmt::format("SCB holds {} values, expected {} (one per row)", q.scales.size(), q.rows()));
    return;
  }
  if (q.format == nullptr) fail("no format");
  if (q.blocksize <= 0) fail(fmt::format("blocksize must be positive, got {}", q.blocksize));
  const int64_t nb = q.NumBlocks();
  const int64_t want_codes = CodeBytes(q.format->code_bits, n);
  if (static_cast<int64_t>(q.codes.size()) < want_codes)
    fail(fmt::format("packed weight holds {} bytes, shape {} needs {}", q.codes.size(), q.shape.ToString(),
                     want_codes));
  if (q.nested) {
    if (static_cast<int64_t>(q.scale_codes.size()) != nb)
      fail(fmt::format("absmax holds {} codes, expected {} blocks of {}", q.scale_codes.size(), nb, q.blocksize));
    if (q.nested_blocksize <= 0 || !IsPowerOfTwo(q.nested_blocksize))
      fail(fmt::format("nested_blocksize must be a power of two, got {}", q.nested_blocksize));
    const int64_t nnb = NumBlocks(nb, q.nested_blocksize);
    if (static_cast<int64_t>(q.nested_absmax.size()) != nnb)
      fail(fmt::format("nested_absmax holds {} values, expected {}", q.nested_absmax.size(), nnb));
    if (q.nested_map.size() != 256) fail(fmt::format("nested_quant_map holds {} values, expected 256", q.nested_map.size()));
  } else if (static_cast<int64_t>(q.scales.size()) != nb) {
    fail(fmt::format("absmax holds {} values, expected {} blocks of {}", q.scales.size(), nb, q.blocksize));
  }
  if (q.format->has_zero_point && static_cast<int64_t>(q.zeros.size()) != nb)
    fail(fmt::format("zero points hold {} values, expected {}", q.zeros.size(), nb));
}

}  // namespace nibble::quant
