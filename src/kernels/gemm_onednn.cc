// oneDNN 2.6 matmul wrapper: primitive cache keyed by shape, dtype and thread count, the
// per-call OpenMP thread-count scope, bf16 rounding of activations, and the env switch.
#include "kernels/gemm_onednn.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "kernels/convert.h"

namespace nibble::kernels {
namespace {

using dnnl::memory;
using Dims = memory::dims;

// Cap on cached primitives: one per distinct (M, N, K, dtype, threads). A model has ~5
// distinct (N, K) and a prompt run a handful of M values; 256 bounds the JIT code kept for
// pathological callers (every prompt length different) without evicting in normal runs.
constexpr size_t kMaxCachedPrimitives = 256;

enum class WeightType { kF32, kBf16 };

// (M, N, K, weight dtype, num_threads).
using Key = std::tuple<size_t, size_t, size_t, WeightType, int>;

// Sets the calling thread's OpenMP nthreads ICV for the lifetime of the scope and restores
// it; oneDNN's OpenMP runtime reads it at primitive creation and execution.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int num_threads) : saved_(omp_get_max_threads()) {
    omp_set_num_threads(num_threads < 1 ? 1 : num_threads);
  }
  ~OmpThreadsScope() { omp_set_num_threads(saved_); }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

memory::desc SrcDesc(size_t M, size_t K, memory::data_type dt) {
  return memory::desc(Dims{static_cast<int64_t>(M), static_cast<int64_t>(K)}, dt, memory::format_tag::ab);
}
// w [N, K] row-major seen as the [K, N] weights matrix: element (k, n) at n·K + k.
memory::desc WeightDesc(size_t N, size_t K, memory::data_type dt) {
  return memory::desc(Dims{static_cast<int64_t>(K), static_cast<int64_t>(N)}, dt, memory::format_tag::ba);
}
memory::desc DstDesc(size_t M, size_t N) {
  return memory::desc(Dims{static_cast<int64_t>(M), static_cast<int64_t>(N)}, memory::data_type::f32,
                      memory::format_tag::ab);
}

// The CPU engine and the primitive cache. Built on first use (inside the callers' try, so
// an engine failure is reported as `false`, and the next call tries again).
class OnednnContext {
 public:
  OnednnContext() : engine_(dnnl::engine::kind::cpu, 0) {}

  const dnnl::engine& engine() const { return engine_; }

  // The cached primitive for `key`, created under the caller's thread scope if missing.
  // Creation runs under the lock: two threads asking for the same new shape build it once.
  dnnl::matmul Get(const Key& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const auto [M, N, K, type, threads] = key;
    const memory::data_type in_dt =
        type == WeightType::kBf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const dnnl::matmul::desc desc(SrcDesc(M, K, in_dt), WeightDesc(N, K, in_dt), DstDesc(M, N));
    const dnnl::matmul::primitive_desc pd(desc, engine_);
    dnnl::matmul prim(pd);
    if (cache_.size() >= kMaxCachedPrimitives) cache_.clear();
    cache_.emplace(key, prim);
    return prim;
  }

 private:
  dnnl::engine engine_;
  std::mutex mu_;
  std::map<Key, dnnl::matmul> cache_;
};

OnednnContext& Context() {
  static OnednnContext ctx;  // thread-safe initialisation; a throwing ctor is retried
  return ctx;
}

// Runs y = src · wᵀ with src already in `type` (f32 or bf16 bits).
void Run(int num_threads, const void* src, const void* w, float* y, size_t M, size_t N, size_t K, WeightType type) {
  const OmpThreadsScope threads(num_threads);
  OnednnContext& ctx = Context();
  const dnnl::matmul prim = ctx.Get(Key{M, N, K, type, num_threads});
  const memory::data_type in_dt = type == WeightType::kBf16 ? memory::data_type::bf16 : memory::data_type::f32;
  // oneDNN takes non-const handles; these two buffers are only read.
  memory src_mem(SrcDesc(M, K, in_dt), ctx.engine(), const_cast<void*>(src));
  memory w_mem(WeightDesc(N, K, in_dt), ctx.engine(), const_cast<void*>(w));
  memory dst_mem(DstDesc(M, N), ctx.engine(), y);
  dnnl::stream stream(ctx.engine());
  prim.execute(stream, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, dst_mem}});
  stream.wait();
}

bool ReadDisabledEnv() {
  const char* v = std::getenv("NIBBLE_DISABLE_ONEDNN");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace

bool OnednnDisabled() noexcept {
  static const bool disabled = ReadDisabledEnv();
  return disabled;
}

bool GemmOnednnF32(int num_threads, const float* x, const float* w, float* y, size_t M, size_t N,
                   size_t K) noexcept {
  if (M == 0 || N == 0 || K == 0) return false;
  try {
    Run(num_threads, x, w, y, M, N, K, WeightType::kF32);
    return true;
  } catch (...) {  // dnnl::error, std::bad_alloc: the caller falls back to Highway
    return false;
  }
}

bool GemmOnednnBf16(int num_threads, const float* x, const uint16_t* w, float* y, size_t M, size_t N,
                    size_t K) noexcept {
  if (M == 0 || N == 0 || K == 0) return false;
  try {
    // Activations rounded once (RNE, subnormals kept), as MatMulBf16 does.
    std::vector<uint16_t> xb(M * K);
    ConvertFromF32Parallel(num_threads, DType::kBF16, x, xb.data(), M * K);
    Run(num_threads, xb.data(), w, y, M, N, K, WeightType::kBf16);
    return true;
  } catch (...) {  // dnnl::error (e.g. no bf16 matmul on this ISA), std::bad_alloc
    return false;
  }
}

}  // namespace nibble::kernels
