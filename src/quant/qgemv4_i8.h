// The int8-activation 4-bit GEMV: an explicit nibble option (QLinearPolicy::int8_activations,
// the CLI's --int8-activations), off by default because it departs from bitsandbytes'
// compute-dtype semantics. llama.cpp computes every 4-bit format this way (Q8_0
// activations); docs/quality/quantization.md shows what it costs in KL divergence.
//
// Definition (the scalar Ref below is normative; K % 64 == 0, blocksize % 64 == 0):
//   activations, per block j of 64 along K: amax_j = max|x|, d_j = amax_j / 127,
//     q_k = clamp(round_half_even(x_k * (127 / amax_j)), -127, 127)
//     q = 0 when amax_j = 0 or 127 / amax_j overflows (amax_j < 3.7e-37); a block holding
//     NaN or inf gets q = 0 and d_j = NaN (y becomes NaN, as on the f32 path)
//   weights: the format's 16 table values as int8, T[c] = nearbyint(lut[c] * mult) with
//     mult = floor(127 / max|lut|) when every lut value is an integer (int4: exact),
//     127 / max|lut| otherwise (NF4, FP4: |T - 127 lut| <= 0.5);
//     weight scale of an element = absmax of its block / mult
//   y = sum_j f32(dot_j) * (d_j * scale_j / mult),  dot_j = sum_{k in j} T[c_k] q_k (exact int32)
// The VNNI kernel computes the same integers; its f32 arithmetic differs: each lane's
// partial sum (weights offset by +128, and the -128·sum(q) correction) is scaled by
// absmax · ((amax/127) / mult) before the lanes are added, so its rounding is relative to
// s_j · Σ (|T| + 256)|q| rather than to |dot_j| (qgemv4_i8_test.cc states the bound).
// The AVX2 kernel (no offset) scales each lane's partial Σ T·q the same way, so its
// rounding is relative to s_j · Σ |T||q|, within the same bound.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "quant/qtensor.h"

namespace nibble::quant {

inline constexpr int64_t kActBlock = 64;  // activation block along K (llama.cpp's Q8_0 block: 32)

// Whether the int8-activation path can run w: a 4-bit table format, K % 64 == 0 and
// rows made of whole blocks with blocksize % 64 == 0.
bool SupportsInt8Activations(const QTensor& w);
// Whether QGemv / QLinear run w this way: the call's policy asks for it and w supports it.
inline bool RunsInt8Activations(const QTensor& w, const QLinearPolicy& policy) {
  return policy.int8_activations && SupportsInt8Activations(w);
}

struct Int8Table {
  std::array<int8_t, 16> t;  // T[c]
  float mult;                // weight = T[c] * absmax / mult
};
Int8Table MakeInt8Table(const float* lut16);

// One row of activations quantized per block of 64: q [K] int8, d [K/64] f32 step,
// sum [K/64] int32 (sum of q, for the unsigned-weight form of vpdpbusd).
struct Q8Activations {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> sum;
};
void QuantizeActivationsQ8(const float* x, int64_t K, Q8Activations* out);

// y: [M, N] = x: [M, K] · Wᵀ by the definition above (precondition: SupportsInt8Activations).
void QGemv4I8(int num_threads, const float* x, const QTensor& w, float* y, int64_t M) noexcept;

// The kernel QGemv4I8 runs under the CPU cap in force (core/cpu_features.h).
enum class Int8ActivationsPath { kAvx512Vnni, kAvx2, kRef };
Int8ActivationsPath ChooseInt8ActivationsPath() noexcept;
const char* Int8ActivationsPathName(Int8ActivationsPath p) noexcept;
// The scalar oracle: exact int32 block dots, f32 sum over blocks in index order.
void QGemv4I8Ref(const float* x, const QTensor& w, float* y, int64_t M);

namespace detail {
// Activations of one x row in the VNNI kernel's layout: per group g of 4 blocks,
// xa[g*256 + j*64 + k*16 + i] holds element (4g+k)*64 + {2i+1, 2i, 33+2i, 32+2i}[j] (the
// low / high nibbles of a block's first / second 16 code bytes); bias[g*16 + 4k + l] =
// -32 * sum_(4g+k) (the weights enter vpdpbusd as T + 128); sa[g*16 + 4k + l] =
// d_(4g+k) / mult. Groups past the last block are zero.
struct VnniActivations {
  std::vector<int8_t> xa;
  std::vector<int32_t> bias;
  std::vector<float> sa;
};
void LayoutForVnni(const Q8Activations& a, int64_t K, float mult, VnniActivations* out);
// QuantizeActivationsQ8 + LayoutForVnni in one AVX-512 pass, the same bytes and floats
// (qgemv4_i8_avx512vnni.cc; precondition CpuHasAvx512Vnni()).
void QuantizeForVnni(const float* x, int64_t K, float mult, VnniActivations* out) noexcept;
// Rows [n0, n1) of the M products (qgemv4_i8_avx512vnni.cc). Preconditions:
// CpuHasAvx512Vnni(), SupportsInt8Activations(*w). act: [M]; y: [M, N];
// scale_buf: [4 * ceil(K/256)*4].
void Gemv4I8RowsVnni(const QTensor* w, const Int8Table& table, const VnniActivations* act, int64_t M, float* y,
                     int64_t n0, int64_t n1, float* scale_buf) noexcept;

// Activations in the AVX2 kernel's layouts, one row of x at a time (bpr = K / 64 blocks):
//   GEMV (LayoutForAvx2): per block b, 128 bytes at xa + 128 b: the even elements
//     q[64b + 2i] (32 int8), the odd ones q[64b + 2i + 1], then |even| and |odd| (the
//     unsigned operand of vpmaddubsw);
//   prompts (LayoutForAvx2Prompt): per block b, 64 int16 at x16 + 64 b: q[64b + 8i + e]
//     for i = 0..7 in the order e = 0, 2 | 4, 6 | 1, 3 | 5, 7 (the code bytes {4i, 4i+1}
//     and {4i+2, 4i+3}, even then odd elements, as the kernel's int16 weights);
//   both: sa[b] = d_b / mult.
void LayoutForAvx2(const Q8Activations& a, int64_t K, float mult, int8_t* xa, float* sa);
void LayoutForAvx2Prompt(const Q8Activations& a, int64_t K, float mult, int16_t* x16, float* sa);
// M rows of activations, token m's blocks at xa + m·bpr·128 or x16 + m·bpr·64 and
// sa + m·bpr. x16 set: the prompt form; else the GEMV form (xa).
struct Avx2Activations {
  const int8_t* xa = nullptr;
  const int16_t* x16 = nullptr;
  const float* sa = nullptr;
};
// Tokens from which QGemv4I8 takes the prompt form.
inline constexpr int64_t kAvx2PromptRows = 4;
// Rows [n0, n1) of the M products (qgemv4_i8_avx2.cc). Preconditions: CpuHasAvx2Fma(),
// SupportsInt8Activations(*w). y: [M, N]; scale_buf: [4 * K/64].
void Gemv4I8RowsAvx2(const QTensor* w, const Int8Table& table, const Avx2Activations& act, int64_t M, float* y,
                     int64_t n0, int64_t n1, float* scale_buf) noexcept;
}  // namespace detail

}  // namespace nibble::quant
