// The optimizers `nibble finetune --optim` offers, under transformers' names, and the state
// they keep per parameter tensor:
//   adamw_torch        torch.optim.AdamW (f32 m, v; adamw.h)
//   adamw_8bit         bitsandbytes AdamW8bit: m, v as 8-bit blockwise codes (adam8bit.h)
//                      for tensors of >= min_8bit_size elements, f32 below
//   paged_adamw_32bit  bitsandbytes PagedAdamW32bit: bnb's update with f32 m, v
//   paged_adamw_8bit   bitsandbytes PagedAdamW8bit
// Paged variants keep the state of tensors of >= page_min_elements in a PagedArena (a
// file-backed mapping the kernel can evict); the numbers are those of the plain variant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "optim/adamw.h"
#include "optim/paged_arena.h"

namespace nibble::optim {

enum class OptimKind { kAdamWTorch, kBnb32bit, kBnb8bit };

struct OptimSpec {
  OptimKind kind = OptimKind::kAdamWTorch;
  bool paged = false;
  int64_t min_8bit_size = 4096;         // bnb's default
  int64_t page_min_elements = 100000;   // bnb: states of numel >= 1e5 are paged
};

// adamw_torch (alias adamw), adamw_8bit (alias adamw_bnb_8bit), paged_adamw_32bit (alias
// paged_adamw), paged_adamw_8bit; ConfigError listing them otherwise.
OptimSpec ParseOptim(std::string_view name);
// The canonical name (the first of each line above).
std::string_view OptimName(const OptimSpec& s);
// What the state holds, without the paging (a run may resume a paged run's checkpoint and
// the other way round): "adamw_torch", "bnb_adamw_32bit", "bnb_adamw_8bit".
std::string_view StateName(OptimKind k);

// Bytes of state for one tensor of n elements, and whether it is 8-bit and paged.
struct TensorStateBytes {
  size_t bytes = 0;
  bool eight_bit = false, paged = false;
};
TensorStateBytes StateBytes(const OptimSpec& s, size_t n);

// One parameter tensor of the flat buffers.
struct ParamRange {
  size_t offset = 0, count = 0;
  bool decay = true;  // weight decay applies (not to biases and norm weights)
};

// AdamW state for every range, and the step.
class AdamWState {
 public:
  // One slot per range: f32 m and v, or 8-bit codes and absmax. RAM state comes from
  // `ram` (untouched until the first step zeroes it); paged state from an arena in
  // `paged_dir` (IoError naming it when the file cannot be made).
  AdamWState(const OptimSpec& spec, std::span<const ParamRange> ranges, Allocator& ram, const std::string& paged_dir);
  ~AdamWState();

  // One update of every range (step = the count after it, 1 for the first). lr is this
  // step's rate; weight_decay applies where the range decays.
  void Step(int threads, float* params, const float* grads, int64_t step, double lr, double weight_decay,
            const AdamWConfig& c);
  void Zero();  // both moments 0 (the state before the first step)

  struct Slot {
    ParamRange range;
    bool eight_bit = false, paged = false;
    float *m = nullptr, *v = nullptr;          // f32 moments [count]
    uint8_t *q1 = nullptr, *q2 = nullptr;      // 8-bit codes [count]
    float *absmax1 = nullptr, *absmax2 = nullptr;  // [ceil(count / 256)]
    size_t blocks() const;
  };
  std::span<const Slot> slots() const { return slots_; }
  const OptimSpec& spec() const { return spec_; }
  size_t ram_bytes() const { return ram_bytes_; }      // state in RAM
  size_t paged_bytes() const { return paged_bytes_; }  // state in the paged file (disk-backed)
  // Copies another state of the same spec and ranges (a test's restore).
  void CopyFrom(const AdamWState& other);

 private:
  OptimSpec spec_;
  std::vector<Slot> slots_;
  std::vector<Tensor> ram_;
  std::unique_ptr<PagedArena> arena_;
  size_t ram_bytes_ = 0, paged_bytes_ = 0;
};

}  // namespace nibble::optim
