// Dense GEMM y = x · wᵀ through oneDNN 2.6 (Debian libdnnl, v2 API) for prompts (M > 1):
// f32 × f32 and f32 activations × bf16 weights. MatMul / MatMulBf16 dispatch here for
// M >= the measured thresholds below and keep their Highway paths under them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nibble::kernels {

// Rows of x from which MatMul (f32) and MatMulBf16 (kAuto) hand the product to oneDNN.
// Measured on SmolLM2-135M shapes (N×K = 576×576, 192×576, 1536×576, 576×1536,
// 49152×576), 2 threads (bench/gemm_bench.cc, bench/RESULTS.md "oneDNN GEMM"). f32: at
// M = 16 oneDNN wins on 4 of 5 shapes (+1..10 %; 192×576 loses 16 % there, 5 % at M = 32),
// at M = 8 it loses or ties on all; at M = 512 it is 1.5-1.8x (89-95 % of the FMA peak).
// bf16: oneDNN wins from M = 8 on every shape (+10..45 %), is mixed at M = 4; 2.5-3.3x at
// M = 512 (81-89 % of the vdpbf16ps peak).
inline constexpr size_t kOnednnMinRowsF32 = 16;
inline constexpr size_t kOnednnMinRowsBf16 = 8;

// Shapes (row-major, no padding): x [M, K] f32, w [N, K] (f32 or bf16 bits), y [M, N] f32
// (written, never read; must not alias x or w). w is described to oneDNN as the [K, N]
// matrix with strides {1, K} (format tag `ba`), so the weights are never copied by us
// (oneDNN's brgemm packs panels of them into its scratchpad while it runs).
//
// Returns true when y holds the product; false when oneDNN failed (a dnnl::error or
// std::bad_alloc, caught here: the functions are noexcept) or a dimension is 0, and then y
// is unspecified and the caller runs its Highway path (same semantics, other summation
// order), so a failure costs speed, never a result.
//
// Threads: Debian's libdnnl uses the OpenMP runtime and sizes its teams from
// omp_get_max_threads() (2.6 has no per-call thread API for that runtime; its brgemm
// fixes the team size when the primitive is created). The calls therefore set the calling
// thread's OpenMP nthreads ICV to `num_threads` around primitive creation and execution
// and restore it after; the ICV is per thread, so other threads are unaffected. Primitives
// are cached per (M, N, K, dtype, num_threads), see below.
//
// Primitive cache: creating a matmul primitive costs ~ms (JIT), so primitives are kept in
// a process-wide, mutex-guarded map of at most 256 entries (cleared when full); this and
// the dnnl engine are the one piece of mutable process state in kernels (accepted for the
// speed; documented in docs/ARCHITECTURE.md). Concurrent calls from several threads are safe.
// f32: y = x · wᵀ, every product and sum in f32 (oneDNN's default strict fpmath mode), in
// oneDNN's blocked order: within K·ε·Σ|x||w| of the double-accumulated MatMulRef.
bool GemmOnednnF32(int num_threads, const float* x, const float* w, float* y, size_t M, size_t N,
                   size_t K) noexcept;

// bf16 weights. oneDNN 2.6 has no f32-src × bf16-weights matmul, so the activations are
// first rounded to bf16 (RNE, subnormals kept, kernels/convert.h: the same rounding as
// MatMulBf16) into an M·K scratch, then a bf16 × bf16 → f32 primitive runs (products exact
// in f32, sums in f32). This is what MatMulBf16 and PyTorch's bf16 matmul compute, and what
// llama.cpp does for bf16 models. On AVX512-BF16 hardware oneDNN uses vdpbf16ps, which
// treats bf16 subnormals as zero (see matmul_bf16.h). Below avx512_core (AVX2 CPUs, or the
// avx2 cap) oneDNN 2.6 has no bf16 matmul: then, for M >= kOnednnMinRowsF32, the rounded
// activations and blocks of weight rows are widened to f32 (exact) and an f32 primitive
// computes the same products (2.2x the Highway tiles at pp512 on SmolLM2, bench/RESULTS.md);
// for fewer rows it returns false. Error against MatMulBf16Ref: within
// K·ε·Σ|bf16(x)·w|.
bool GemmOnednnBf16(int num_threads, const float* x, const uint16_t* w, float* y, size_t M, size_t N,
                    size_t K) noexcept;

// General f32 GEMM for the backward pass: C[M, N] = op(A)·op(B) (+ C when `accumulate`),
// row-major, no padding. op(A) is [M, K]: A stored [M, K], or [K, M] when trans_a. op(B)
// is [K, N]: B stored [K, N], or [N, K] when trans_b. The transposes are strides in
// oneDNN's memory descriptors (nothing is copied by us); accumulation is oneDNN's sum
// post-op. Same return contract, threads and caching as GemmOnednnF32 (primitives keyed
// by shape, transposes, accumulate and threads). C must not alias A or B.
bool GemmOnednnF32General(int num_threads, bool trans_a, bool trans_b, const float* a, const float* b, float* c,
                          size_t M, size_t N, size_t K, bool accumulate) noexcept;

// True when the environment variable NIBBLE_DISABLE_ONEDNN is set to a value other than
// "" or "0" (read once per process), or the CPU cap is scalar (core/cpu_features.h):
// MatMul and MatMulBf16 then never call oneDNN. For before/after measurements, to rule
// oneDNN out when chasing a numerical difference, and so that a scalar-capped run uses
// no vector code at all.
//
// ISA cap: the first oneDNN call of the process sets dnnl_set_max_cpu_isa from the CPU
// cap (avx512 -> avx512_core_bf16, avx2 -> avx2, native -> no cap); oneDNN honours it
// only before its first primitive, so a capped run is its own process. Under a lower cap
// set later in the same process, oneDNN is not used (also true here): it never runs above
// the cap in force.
bool OnednnDisabled() noexcept;

// True once a bf16 primitive failed to build under the ISA cap (oneDNN 2.6 has bf16
// matmuls from avx512_core only): GemmOnednnBf16 then widens to f32 (M >= 16) or declines.
bool OnednnBf16Unavailable() noexcept;

// Whether the f32 (bf16 = false) or bf16 prompt GEMM runs through oneDNN, for `nibble
// --version`: {true, "oneDNN 2.6.3 (ISA cap avx2, runs avx2)"}, or {false, why not}.
// Builds the oneDNN context (fixing its ISA cap) and one tiny primitive.
struct OnednnUse {
  bool used;
  std::string text;
};
OnednnUse OnednnPath(bool bf16);

}  // namespace nibble::kernels
