// oneDNN 2.6 matmul wrapper: primitive cache keyed by shape, dtype and thread count, the
// per-call OpenMP thread-count scope, bf16 rounding of activations, and the env switch.
#include "kernels/gemm_onednn.h"

#include <fmt/core.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/cpu_features.h"
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
// oneDNN's ISA cap for nibble's CPU cap (core/cpu_features.h). dnnl_set_max_cpu_isa takes
// effect only before the first primitive of the process, so it is set once, when the
// context is built; a later in-process cap change (tests) leaves oneDNN where it was.
// The CPU cap when the oneDNN context was built (-1: not built yet). oneDNN keeps the ISA
// cap of that moment for the whole process, so under a lower cap set later in the same
// process (tests' in-process cap loops) it would run above the cap: it is then not used.
std::atomic<int> g_built_cap{-1};

const char* ApplyIsaCap() {
  g_built_cap.store(static_cast<int>(CpuCap()));
  switch (CpuCap()) {
    case CpuLevel::kAvx512:
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx512_core_bf16);  // VNNI and BF16, no AMX
      return "avx512_core_bf16";
    case CpuLevel::kAvx2:
    case CpuLevel::kScalar:  // oneDNN is not called at scalar (OnednnDisabled)
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
      return "avx2";
    case CpuLevel::kNative:
      break;
  }
  return "none (all the CPU has)";
}

class OnednnContext {
 public:
  OnednnContext()
      : isa_cap_(ApplyIsaCap()),
        engine_(dnnl::engine::kind::cpu, 0),
        note_f32_(std::string("oneDNN f32 matmul, ISA cap ") + isa_cap_),
        note_bf16_(std::string("oneDNN bf16 matmul, ISA cap ") + isa_cap_),
        note_widened_(std::string("oneDNN bf16 matmul widened to f32, ISA cap ") + isa_cap_) {}

  const dnnl::engine& engine() const { return engine_; }
  const char* isa_cap() const { return isa_cap_; }
  const char* isa_note_f32() const { return note_f32_.c_str(); }  // for the dispatch log
  const char* isa_note_bf16() const { return note_bf16_.c_str(); }
  const char* isa_note_widened() const { return note_widened_.c_str(); }
  // Whether a bf16 primitive failed to build under the ISA cap (oneDNN 2.6 has bf16
  // matmuls from avx512_core only); bf16 products then run widened to f32.
  bool bf16_unavailable() {
    std::lock_guard<std::mutex> lock(mu_);
    return bf16_unavailable_;
  }

  // The cached primitive for `key`, created under the caller's thread scope if missing.
  // Creation runs under the lock: two threads asking for the same new shape build it once.
  // A (dtype, threads) whose creation failed once (no bf16 matmul below avx512_core) is
  // not retried: the caller's Highway path runs without paying for a failed JIT each call.
  dnnl::matmul Get(const Key& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const auto [M, N, K, type, threads] = key;
    if (type == WeightType::kBf16 && bf16_unavailable_) throw dnnl::error(dnnl_unimplemented, "bf16 matmul");
    const memory::data_type in_dt =
        type == WeightType::kBf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const dnnl::matmul::desc desc(SrcDesc(M, K, in_dt), WeightDesc(N, K, in_dt), DstDesc(M, N));
    try {
      const dnnl::matmul::primitive_desc pd(desc, engine_);
      dnnl::matmul prim(pd);
      if (cache_.size() >= kMaxCachedPrimitives) cache_.clear();
      cache_.emplace(key, prim);
      return prim;
    } catch (const dnnl::error& e) {
      if (type == WeightType::kBf16 && e.status == dnnl_unimplemented) bf16_unavailable_ = true;
      throw;
    }
  }

 private:
  const char* isa_cap_;
  dnnl::engine engine_;
  std::string note_f32_, note_bf16_, note_widened_;
  std::mutex mu_;
  std::map<Key, dnnl::matmul> cache_;
  bool bf16_unavailable_ = false;
};

OnednnContext& Context() {
  static OnednnContext ctx;  // thread-safe initialisation; a throwing ctor is retried
  return ctx;
}

// ---- the general f32 GEMM of the backward pass ----------------------------------------

// (M, N, K, trans_a, trans_b, accumulate, threads).
using GeneralKey = std::tuple<size_t, size_t, size_t, bool, bool, bool, int>;

memory::desc StridedDesc(size_t rows, size_t cols, bool trans) {
  // [rows, cols] stored row-major, or its transpose stored row-major ([cols, rows]).
  const Dims dims{static_cast<int64_t>(rows), static_cast<int64_t>(cols)};
  const Dims strides = trans ? Dims{1, static_cast<int64_t>(rows)} : Dims{static_cast<int64_t>(cols), 1};
  return memory::desc(dims, memory::data_type::f32, strides);
}

class GeneralCache {
 public:
  dnnl::matmul Get(const dnnl::engine& engine, const GeneralKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const auto [M, N, K, ta, tb, acc, threads] = key;
    const dnnl::matmul::desc desc(StridedDesc(M, K, ta), StridedDesc(K, N, tb), DstDesc(M, N));
    dnnl::primitive_attr attr;
    if (acc) {
      dnnl::post_ops po;
      po.append_sum(1.0f);
      attr.set_post_ops(po);
    }
    const dnnl::matmul::primitive_desc pd(desc, attr, engine);
    dnnl::matmul prim(pd);
    if (cache_.size() >= kMaxCachedPrimitives) cache_.clear();
    cache_.emplace(key, prim);
    return prim;
  }

 private:
  std::mutex mu_;
  std::map<GeneralKey, dnnl::matmul> cache_;
};

GeneralCache& General() {
  static GeneralCache cache;
  return cache;
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

const char* IsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

bool ReadDisabledEnv() {
  const char* v = std::getenv("NIBBLE_DISABLE_ONEDNN");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace

bool OnednnBf16Unavailable() noexcept {
  try {
    return Context().bf16_unavailable();
  } catch (...) {
    return true;
  }
}

bool OnednnDisabled() noexcept {
  static const bool disabled = ReadDisabledEnv();
  const int built = g_built_cap.load();
  return disabled || EffectiveCpuLevel() == CpuLevel::kScalar || (built >= 0 && static_cast<int>(CpuCap()) < built);
}

OnednnUse OnednnPath(bool bf16) {
  if (OnednnDisabled()) {
    if (ReadDisabledEnv()) return {false, "NIBBLE_DISABLE_ONEDNN is set"};
    if (EffectiveCpuLevel() == CpuLevel::kScalar) return {false, "oneDNN is off at the scalar cap"};
    return {false, "oneDNN started under a higher cap in this process"};
  }
  try {
    OnednnContext& ctx = Context();
    // A 16 x 16 x 16 product tells whether this dtype has a primitive under the cap.
    std::vector<float> x(256, 0.0f), y(256);
    std::vector<uint16_t> wb(256, 0);
    const bool ok = bf16 ? GemmOnednnBf16(1, x.data(), wb.data(), y.data(), 16, 16, 16)
                         : GemmOnednnF32(1, x.data(), x.data(), y.data(), 16, 16, 16);
    const dnnl_version_t* v = dnnl_version();
    const std::string eff = fmt::format("oneDNN {}.{}.{} (ISA cap {}, runs {})", v->major, v->minor, v->patch,
                                        ctx.isa_cap(), IsaName(dnnl::get_effective_cpu_isa()));
    if (ok && bf16 && Context().bf16_unavailable()) return {true, eff + ", bf16 widened to f32 (no bf16 matmul here)"};
    if (ok) return {true, eff};
    return {false, fmt::format("{} has no {} matmul here", eff, bf16 ? "bf16" : "f32")};
  } catch (...) {
    return {false, "oneDNN failed to start"};
  }
}

bool GemmOnednnF32(int num_threads, const float* x, const float* w, float* y, size_t M, size_t N,
                   size_t K) noexcept {
  if (M == 0 || N == 0 || K == 0 || OnednnDisabled()) return false;
  try {
    Run(num_threads, x, w, y, M, N, K, WeightType::kF32);
    NoteDispatch(Context().isa_note_f32());
    return true;
  } catch (...) {  // dnnl::error, std::bad_alloc: the caller falls back to Highway
    return false;
  }
}

bool GemmOnednnF32General(int num_threads, bool trans_a, bool trans_b, const float* a, const float* b, float* c,
                          size_t M, size_t N, size_t K, bool accumulate) noexcept {
  if (M == 0 || N == 0 || K == 0 || OnednnDisabled()) return false;
  try {
    const OmpThreadsScope threads(num_threads);
    OnednnContext& ctx = Context();
    const dnnl::matmul prim = General().Get(ctx.engine(), GeneralKey{M, N, K, trans_a, trans_b, accumulate, num_threads});
    memory a_mem(StridedDesc(M, K, trans_a), ctx.engine(), const_cast<float*>(a));
    memory b_mem(StridedDesc(K, N, trans_b), ctx.engine(), const_cast<float*>(b));
    memory c_mem(DstDesc(M, N), ctx.engine(), c);
    dnnl::stream stream(ctx.engine());
    prim.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    stream.wait();
    NoteDispatch(ctx.isa_note_f32());
    return true;
  } catch (...) {
    return false;
  }
}

bool GemmOnednnBf16(int num_threads, const float* x, const uint16_t* w, float* y, size_t M, size_t N,
                    size_t K) noexcept {
  if (M == 0 || N == 0 || K == 0 || OnednnDisabled()) return false;
  try {
    OnednnContext& ctx = Context();
    // Below the f32 crossover the widened path declines (MatMulBf16's Highway tiles win).
    if (ctx.bf16_unavailable() && M < kOnednnMinRowsF32) return false;
    // Activations rounded once (RNE, subnormals kept), as MatMulBf16 does.
    std::vector<uint16_t> xb(M * K);
    ConvertFromF32Parallel(num_threads, DType::kBF16, x, xb.data(), M * K);
    if (!ctx.bf16_unavailable()) {
      try {
        Run(num_threads, xb.data(), w, y, M, N, K, WeightType::kBf16);
        NoteDispatch(ctx.isa_note_bf16());
        return true;
      } catch (const dnnl::error&) {
        if (!ctx.bf16_unavailable()) throw;  // not the missing-ISA case
      }
    }
    // No bf16 matmul under this ISA (oneDNN 2.6 needs avx512_core): the same product in
    // f32. bf16(x)·w is exact in f32 (8 + 8 significant bits), so an f32 GEMM over the
    // widened operands computes what the bf16 primitive computes: exact products, f32
    // sums. The weights are widened a block of rows at a time (L2-sized scratch), the
    // block's product written to a scratch and copied into y's columns.
    if (M < kOnednnMinRowsF32) return false;  // below the f32 crossover the Highway tiles win
    std::vector<float> xr(M * K);
    ConvertToF32Parallel(num_threads, DType::kBF16, xb.data(), xr.data(), M * K);
    size_t nb = (size_t{2} << 20) / (4 * K);  // weight rows per block: 2 MiB of f32
    nb = std::min(N, std::max<size_t>(16, nb / 16 * 16));
    std::vector<float> wf(nb * K), yb(M * nb);
    for (size_t n0 = 0; n0 < N; n0 += nb) {
      const size_t n = std::min(nb, N - n0);
      ConvertToF32Parallel(num_threads, DType::kBF16, w + n0 * K, wf.data(), n * K);
      Run(num_threads, xr.data(), wf.data(), yb.data(), M, n, K, WeightType::kF32);
      for (size_t m = 0; m < M; ++m) std::copy_n(yb.data() + m * n, n, y + m * N + n0);
    }
    NoteDispatch(ctx.isa_note_widened());
    return true;
  } catch (...) {  // dnnl::error, std::bad_alloc: the caller falls back to Highway
    return false;
  }
}

}  // namespace nibble::kernels
