// LLM.int8() (arXiv:2208.07339; spec bnb-compatible-quantization.md §5): vector-wise
// int8 weights (one absmax SCB per output row, codes CB), per-token int8 activations,
// an exact int32 product, and "outlier" feature columns (|x| >= threshold in any row)
// computed in f32 against the dequantized weights and added back.
//   CB  [out, in] i8   rne(f32(fp16(W) * f32(127 / SCB[r])))
//   SCB [out] f32      max_c |fp16(W[r, c])|
//   Wd[r, c] = f32(f32(CB * SCB[r]) * f32(1/127))
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace nibble::quant::llm_int8 {

// f32(1/(127*127)) = 6.200012285262346e-05 (§5.4; NOT bnb's CPU typo 0x388206aa).
inline constexpr float kK8 = std::bit_cast<float>(0x38820610u);
// f32(1/127) = 0.007874015718698502 (§5.1).
inline constexpr float kInv127 = std::bit_cast<float>(0x3c010204u);

// w: [rows, cols] f32 holding fp16-representable values (the caller rounds to fp16 and
// refuses overflow) -> cb: [rows, cols] i8, scb: [rows] f32 (§5.1).
void QuantizeWeightRef(const float* w, int64_t rows, int64_t cols, int8_t* cb, float* scb) noexcept;

// Per-forward activation quantization of x: [M, K] (§5.2).
struct ActivationQuant {
  std::vector<int32_t> outlier_cols;  // sorted feature indices with |fp16(x)| >= fp16(threshold) somewhere
  std::vector<float> sca;             // [M] row absmax over the non-outlier elements
  std::vector<int8_t> ca;             // [M, K] codes, zero in outlier columns (when M > 1) and at outliers
};
ActivationQuant QuantizeActivationsRef(const float* x, int64_t M, int64_t K, float threshold);

// The int32 product Acc[m, n] = sum_k ca[m, k] * cb[n, k] (exact, §5.3): acc: [M, N].
void Int8MatMulRef(const int8_t* ca, const int8_t* cb, int64_t M, int64_t N, int64_t K, int32_t* acc) noexcept;

// The whole layer without bias (§5.2-§5.5), everything in binary32, one rounding per op:
// y: [M, N] = Y8 + x[:, O] · Wd[:, O]ᵀ. x: [M, K] f32; cb: [N, K]; scb: [N].
void MatMulRef(const float* x, int64_t M, const int8_t* cb, const float* scb, int64_t N, int64_t K, float threshold,
               float* y);
// Same result, fast path: vpdpbusd, vpmaddubsw or Highway int8 dot products, parallel over output
// rows, blocked so that each L2-sized tile of rows serves every token of a prompt.
void MatMul(int num_threads, const float* x, int64_t M, const int8_t* cb, const float* scb, int64_t N, int64_t K,
            float threshold, float* y);

namespace detail {
// acc[n] = sum_k a[k] * cb[n, k] for n in [n0, n1) through vpdpbusd, with a given as
// abs_a: [K] |a| and neg: [ceil(K/64)] bit k%64 of word k/64 set where a[k] < 0.
// Precondition: CpuHasAvx512Vnni(); cb codes in -127..127.
void Int8DotRowsVnni(const uint8_t* abs_a, const uint64_t* neg, const int8_t* cb, int64_t K, int32_t* acc, int64_t n0,
                     int64_t n1) noexcept;
// The same through vpmaddubsw (llm_int8_avx2.cc), with a: [K] the codes and abs_a: [K]
// |a|. Precondition: CpuHasAvx2Fma(); cb codes in -127..127.
void Int8DotRowsAvx2(const int8_t* a, const uint8_t* abs_a, const int8_t* cb, int64_t K, int32_t* acc, int64_t n0,
                     int64_t n1) noexcept;
}  // namespace detail

// The int8 dot product MatMul runs under the CPU cap in force (core/cpu_features.h):
// vpdpbusd, vpmaddubsw, or Highway's widening multiply (pmaddwd) at its current target.
enum class Int8DotPath { kAvx512Vnni, kAvx2, kHighway };
Int8DotPath ChooseInt8DotPath() noexcept;

}  // namespace nibble::quant::llm_int8
