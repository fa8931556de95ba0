// QTensor: one quantized weight matrix as one object (conventions C4): the method and
// its format traits, the unquantized shape, packed codes, scales, zero points and the
// optional double-quantized scales. Arrays are spans, borrowed from a mapped file or
// pointing into `owned`; a moved QTensor keeps them valid (Tensor storage stays put).
// Upper layers see QTensor and QuantizedLinear only, never a format by name.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "quant/blockwise.h"

namespace nibble::quant {

// The dtype a 4-bit layer computes in (bnb_4bit_compute_dtype, spec §2.8): weights are
// dequantized to it and multiplied with activations rounded to it, accumulating in f32.
enum class ComputeDtype : uint8_t { kF32, kBf16, kF16 };

struct QTensor {
  QuantMethod method = QuantMethod::kNf4;
  const BlockwiseTraits* format = nullptr;  // null for kLlmInt8
  Shape shape;                              // unquantized, row-major [out, in]
  DType dtype = DType::kF32;                // dtype of the weight when quantized (quant state "dtype")
  int64_t blocksize = 64;                   // first-level block (flat order); = in per row, = n per tensor
  // The compute dtype recorded with the weight (the checkpoint's bnb_4bit_compute_dtype):
  // the default, which a call's QLinearPolicy::compute may override.
  ComputeDtype compute = ComputeDtype::kF32;

  std::span<const uint8_t> codes;  // [CodeBytes(n)] 4-bit packed or int8 (i8 bits)
  std::span<const float> scales;   // [nb] f32: absmax (NF4/FP4, LLM.int8 SCB) or step; empty when nested
  std::span<const float> zeros;    // [nb] f32 zero points (zero-point formats only)

  // Double quantization of the absmax (spec §3): scales = reconstruct(scale_codes).
  bool nested = false;
  std::span<const uint8_t> scale_codes;  // [nb] u8
  std::span<const float> nested_absmax;  // [ceil(nb / nested_blocksize)] f32
  std::span<const float> nested_map;     // [256] f32, the map stored with the weight
  float nested_offset = 0.0f;
  int64_t nested_blocksize = 256;

  float threshold = 6.0f;  // LLM.int8(): llm_int8_threshold (0 disables outlier columns)

  std::vector<Tensor> owned;  // storage behind the spans when not borrowed

  int64_t rows() const { return shape.rank() == 2 ? shape.dims()[0] : 1; }
  int64_t cols() const { return shape.rank() == 2 ? shape.dims()[1] : shape.NumElems(); }
  int64_t NumElems() const { return shape.NumElems(); }
  int64_t NumBlocks() const { return quant::NumBlocks(NumElems(), blocksize); }
  int code_bits() const { return format != nullptr ? format->code_bits : 8; }
  // Bytes of codes, scales (or their nested form), zero points: what the weight costs.
  uint64_t StorageBytes() const;
  // First-level scales of blocks [begin, end) into out (reconstructing nested ones).
  void BlockScales(int64_t begin, int64_t end, float* out) const;
};

// How one call computes with a QTensor. A QTensor is frozen data: a model holds it
// const, and one weight is shared read-only by every thread, every QLoRA step and every
// ZeRO rank, so the run-time choices travel with each call instead (QGemv, QLinear, the
// model's LinearCall).
struct QLinearPolicy {
  // Overrides the weight's recorded compute dtype when set (mixed-precision training).
  std::optional<ComputeDtype> compute;
  // nibble option, never stored in checkpoints: 4-bit layers quantize activations to int8
  // per block of 64 and multiply integers (qgemv4_i8.h), for every batch size. Honoured
  // only where SupportsInt8Activations(w); the compute dtype is then unused.
  bool int8_activations = false;

  ComputeDtype ComputeFor(const QTensor& w) const { return compute.value_or(w.compute); }
};

struct QuantizeSpec {
  QuantMethod method = QuantMethod::kNf4;
  int64_t blocksize = 64;   // 4-bit formats and int8 per block; 0 = one block per row; -1 = per tensor
  bool double_quant = false;  // NF4/FP4 only
  float threshold = 6.0f;     // LLM.int8()
  ComputeDtype compute = ComputeDtype::kF32;
};

// Format traits of a blockwise method, nullptr for kLlmInt8 (registry.cc).
const BlockwiseTraits* FindBlockwiseFormat(QuantMethod m);
std::string_view MethodName(QuantMethod m);

// Quantizes w: [rows, cols] f32 (finite; callers refuse NaN/inf naming the tensor).
// `dtype` records the source dtype (bf16/f16/f32). LLM.int8() rounds w to fp16 first
// (spec §5.1). Parallel over whole blocks; the result is bit-identical for any thread
// count. Memory comes from `alloc`. Throws ShapeError for a bad blocksize.
QTensor QuantizeMatrix(Allocator& alloc, const float* w, const Shape& shape, DType dtype, const QuantizeSpec& spec,
                       int num_threads);
// LLM.int8() weights (threshold recorded) read row by row from a matrix stored as f32,
// bf16 or f16 at w, so no f32 copy of the whole matrix is made; the same codes as
// QuantizeMatrix's kLlmInt8 on the f32 values (which calls this).
QTensor QuantizeLlmInt8Stored(Allocator& alloc, const void* w, DType stored, const Shape& shape, DType dtype,
                              float threshold, int num_threads);
// Dequantizes every element (spec §2.6, §5.1 Wd for LLM.int8) into out: [n] f32.
void DequantizeMatrix(const QTensor& q, float* out, int num_threads);
// Elements [begin, end) of the flat order, dequantized exactly as DequantizeMatrix.
void DequantizeRange(const QTensor& q, int64_t begin, int64_t end, float* out);
// Checks the spans against shape/blocksize (sizes, nested pieces); FormatError naming
// `where` (file and tensor) with what was expected and found.
void ValidateQTensor(const QTensor& q, std::string_view where);

}  // namespace nibble::quant
