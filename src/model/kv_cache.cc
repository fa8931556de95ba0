// KvCache allocation.
#include "model/kv_cache.h"

#include <fmt/format.h>
#include <unistd.h>

#include <new>
#include <string>

#include "nibble/error.h"

namespace nibble::model {

namespace {

std::string Gib(double b) { return fmt::format("{:.2f} GiB", b / double(1ull << 30)); }

// The context length, checked against the memory the cache would take: a context far
// past the machine's memory is a clear error here, not an allocation failure later.
int64_t CheckedMaxSeq(const LlamaConfig& config, int64_t max_seq) {
  if (max_seq < 1) throw ConfigError(fmt::format("KV cache: context length must be >= 1, got {}", max_seq));
  const double bytes = 2.0 * double(config.num_hidden_layers) * double(max_seq) * double(config.KvDim()) * 4.0;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const double phys = pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
  if (phys > 0.0 && bytes > phys)
    throw ConfigError(fmt::format("context {} (-c): the KV cache would need {} (2 x {} layers x {} positions x {} "
                                  "values x 4 bytes), more than this machine's {} of memory; use a smaller -c",
                                  max_seq, Gib(bytes), config.num_hidden_layers, max_seq, config.KvDim(), Gib(phys)));
  return max_seq;
}

Tensor AllocateCache(Allocator& alloc, const LlamaConfig& config, int64_t max_seq) {
  try {
    return Tensor(alloc, DType::kF32, Shape{config.num_hidden_layers, max_seq, config.KvDim()});
  } catch (const std::bad_alloc&) {
    const double bytes = 2.0 * double(config.num_hidden_layers) * double(max_seq) * double(config.KvDim()) * 4.0;
    throw ConfigError(fmt::format("context {} (-c): out of memory allocating the KV cache ({} in all); use a smaller -c",
                                  max_seq, Gib(bytes)));
  }
}

}  // namespace

KvCache::KvCache(Allocator& alloc, const LlamaConfig& config, int64_t max_seq)
    : max_seq_(CheckedMaxSeq(config, max_seq)),
      num_layers_(config.num_hidden_layers),
      kv_dim_(config.KvDim()),
      k_(AllocateCache(alloc, config, max_seq_)),
      v_(AllocateCache(alloc, config, max_seq_)) {}

}  // namespace nibble::model
