// The index of a flat parameter buffer (llm.c's malloc_and_point_parameters): named
// tensors laid out back to back in one f32 range, each starting on a 64-byte boundary.
// Parameters, gradients and optimizer moments use the same index over buffers of
// total() floats, so a tensor is an offset and a ZeRO shard is an offset range.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/shape.h"

namespace nibble::model {

struct ParamEntry {
  std::string name;     // the tensor's name in the file it is saved to
  Shape shape;
  size_t offset = 0;    // in floats, a multiple of 16
  size_t count = 0;     // elements
  bool decay = true;    // AdamW weight decay applies (HF Trainer: not to biases and norms)
};

class ParamIndex {
 public:
  // Appends a tensor; returns its offset. The gap up to the next 16-float boundary is
  // padding that stays zero in every buffer.
  size_t Add(std::string name, const Shape& shape, bool decay) {
    const size_t count = static_cast<size_t>(shape.NumElems());
    entries_.push_back({std::move(name), shape, total_, count, decay});
    total_ += (count + 15) / 16 * 16;
    return entries_.back().offset;
  }
  const std::vector<ParamEntry>& entries() const { return entries_; }
  size_t total() const { return total_; }       // floats, padding included
  size_t num_params() const {                   // elements, padding excluded
    size_t n = 0;
    for (const ParamEntry& e : entries_) n += e.count;
    return n;
  }

 private:
  std::vector<ParamEntry> entries_;
  size_t total_ = 0;
};

}  // namespace nibble::model
