// KvCache allocation.
#include "model/kv_cache.h"

#include <fmt/format.h>

#include "nibble/error.h"

namespace nibble::model {

namespace {
int64_t CheckedMaxSeq(int64_t max_seq) {
  if (max_seq < 1) throw ConfigError(fmt::format("KV cache: context length must be >= 1, got {}", max_seq));
  return max_seq;
}
}  // namespace

KvCache::KvCache(Allocator& alloc, const LlamaConfig& config, int64_t max_seq)
    : max_seq_(CheckedMaxSeq(max_seq)),
      num_layers_(config.num_hidden_layers),
      kv_dim_(config.KvDim()),
      k_(alloc, DType::kF32, Shape{num_layers_, max_seq_, kv_dim_}),
      v_(alloc, DType::kF32, Shape{num_layers_, max_seq_, kv_dim_}) {}

}  // namespace nibble::model
