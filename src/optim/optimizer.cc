// ParseOptim and AdamWState: the slots, where they live, and the step per kind.
#include "optim/optimizer.h"

#include <fmt/format.h>

#include <cstring>

#include "core/check.h"
#include "nibble/error.h"
#include "optim/adam8bit.h"

namespace nibble::optim {

OptimSpec ParseOptim(std::string_view name) {
  OptimSpec s;
  if (name == "adamw_torch" || name == "adamw") return s;
  if (name == "adamw_8bit" || name == "adamw_bnb_8bit") {
    s.kind = OptimKind::kBnb8bit;
  } else if (name == "paged_adamw_32bit" || name == "paged_adamw") {
    s.kind = OptimKind::kBnb32bit;
    s.paged = true;
  } else if (name == "paged_adamw_8bit") {
    s.kind = OptimKind::kBnb8bit;
    s.paged = true;
  } else {
    throw ConfigError(fmt::format("option 'optim': unknown optimizer \"{}\"; nibble has adamw_torch (alias adamw), "
                                  "adamw_8bit (alias adamw_bnb_8bit), paged_adamw_32bit (alias paged_adamw) and "
                                  "paged_adamw_8bit",
                                  name));
  }
  return s;
}

std::string_view OptimName(const OptimSpec& s) {
  switch (s.kind) {
    case OptimKind::kAdamWTorch: return "adamw_torch";
    case OptimKind::kBnb32bit: return s.paged ? "paged_adamw_32bit" : "adamw_32bit";
    case OptimKind::kBnb8bit: return s.paged ? "paged_adamw_8bit" : "adamw_8bit";
  }
  return "?";
}

std::string_view StateName(OptimKind k) {
  switch (k) {
    case OptimKind::kAdamWTorch: return "adamw_torch";
    case OptimKind::kBnb32bit: return "bnb_adamw_32bit";
    case OptimKind::kBnb8bit: return "bnb_adamw_8bit";
  }
  return "?";
}

namespace {
size_t Blocks(size_t n) { return (n + kAdam8bitBlock - 1) / kAdam8bitBlock; }
}  // namespace

size_t AdamWState::Slot::blocks() const { return Blocks(range.count); }

TensorStateBytes StateBytes(const OptimSpec& s, size_t n) {
  TensorStateBytes b;
  b.eight_bit = s.kind == OptimKind::kBnb8bit && static_cast<int64_t>(n) >= s.min_8bit_size;
  b.bytes = b.eight_bit ? 2 * n + 2 * Blocks(n) * sizeof(float) : 2 * n * sizeof(float);
  b.paged = s.paged && static_cast<int64_t>(n) >= s.page_min_elements;
  return b;
}

AdamWState::AdamWState(const OptimSpec& spec, std::span<const ParamRange> ranges, Allocator& ram,
                       const std::string& paged_dir)
    : spec_(spec) {
  size_t arena_bytes = 0;
  for (const ParamRange& r : ranges) {
    const TensorStateBytes b = StateBytes(spec, r.count);
    if (!b.paged) continue;
    // One region per array (codes and absmax apart), each page-aligned.
    arena_bytes += b.eight_bit ? 2 * PagedRegionBytes(r.count) + 2 * PagedRegionBytes(Blocks(r.count) * 4)
                               : 2 * PagedRegionBytes(r.count * 4);
  }
  if (arena_bytes > 0) arena_ = std::make_unique<PagedArena>(paged_dir, arena_bytes);
  for (const ParamRange& r : ranges) {
    const TensorStateBytes b = StateBytes(spec, r.count);
    Slot s;
    s.range = r;
    s.eight_bit = b.eight_bit;
    s.paged = b.paged;
    auto take = [&](size_t bytes) -> void* {
      if (b.paged) {
        paged_bytes_ += bytes;
        return arena_->Take(bytes);
      }
      ram_bytes_ += bytes;
      ram_.emplace_back(ram, DType::kU8, Shape{static_cast<int64_t>(std::max<size_t>(bytes, 1))});
      return ram_.back().data();
    };
    if (b.eight_bit) {
      s.q1 = static_cast<uint8_t*>(take(r.count));
      s.q2 = static_cast<uint8_t*>(take(r.count));
      s.absmax1 = static_cast<float*>(take(Blocks(r.count) * sizeof(float)));
      s.absmax2 = static_cast<float*>(take(Blocks(r.count) * sizeof(float)));
    } else {
      s.m = static_cast<float*>(take(r.count * sizeof(float)));
      s.v = static_cast<float*>(take(r.count * sizeof(float)));
    }
    slots_.push_back(s);
  }
}

AdamWState::~AdamWState() = default;

void AdamWState::Zero() {
  for (const Slot& s : slots_) {
    if (s.eight_bit) {
      // bitsandbytes' initial state (spec §4.2.1): codes 0 and absmax 0, so both moments
      // start at (signed) zero.
      std::memset(s.q1, 0, s.range.count);
      std::memset(s.q2, 0, s.range.count);
      std::memset(s.absmax1, 0, s.blocks() * sizeof(float));
      std::memset(s.absmax2, 0, s.blocks() * sizeof(float));
    } else {
      std::memset(s.m, 0, s.range.count * sizeof(float));
      std::memset(s.v, 0, s.range.count * sizeof(float));
    }
  }
}

void AdamWState::CopyFrom(const AdamWState& o) {
  NB_CHECK(o.slots_.size() == slots_.size() && o.spec_.kind == spec_.kind, "optimizer states differ");
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot &a = slots_[i], &b = o.slots_[i];
    NB_CHECK(a.range.count == b.range.count && a.eight_bit == b.eight_bit, "optimizer slot {} differs", i);
    if (a.eight_bit) {
      std::memcpy(a.q1, b.q1, a.range.count);
      std::memcpy(a.q2, b.q2, a.range.count);
      std::memcpy(a.absmax1, b.absmax1, a.blocks() * sizeof(float));
      std::memcpy(a.absmax2, b.absmax2, a.blocks() * sizeof(float));
    } else {
      std::memcpy(a.m, b.m, a.range.count * sizeof(float));
      std::memcpy(a.v, b.v, a.range.count * sizeof(float));
    }
  }
}

void AdamWState::Step(int threads, float* params, const float* grads, int64_t step, double lr, double weight_decay,
                      const AdamWConfig& c) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (i + 1 < slots_.size() && slots_[i + 1].paged) {  // read the next paged tensor's state ahead
      const Slot& nx = slots_[i + 1];
      if (nx.eight_bit) {
        PagedArena::WillNeed(nx.q1, nx.range.count);
        PagedArena::WillNeed(nx.q2, nx.range.count);
      } else {
        PagedArena::WillNeed(nx.m, nx.range.count * sizeof(float));
        PagedArena::WillNeed(nx.v, nx.range.count * sizeof(float));
      }
    }
    float* p = params + s.range.offset;
    const float* g = grads + s.range.offset;
    const double wd = s.range.decay ? weight_decay : 0.0;
    if (spec_.kind == OptimKind::kAdamWTorch) {
      AdamWStep(threads, p, g, s.m, s.v, s.range.count, step, lr, wd, c);
      continue;
    }
    const BnbAdamHyper h{static_cast<float>(lr), static_cast<float>(c.beta1), static_cast<float>(c.beta2),
                         static_cast<float>(c.eps), static_cast<float>(wd), 1.0f};
    if (s.eight_bit) {
      Adam8bitStep(threads, p, g, s.q1, s.q2, s.absmax1, s.absmax2, s.range.count, step, h);
    } else {
      Adam32bitStep(threads, p, g, s.m, s.v, s.range.count, step, h);
    }
  }
}

}  // namespace nibble::optim
