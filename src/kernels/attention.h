// Causal grouped-query attention over a KV cache (../shared/specs/gptq-lora-zero.md
// §4.2): per query head i, kv head j = i / (H / KV); S = q·kᵀ / sqrt(Dh) over positions
// 0 .. pos (the causal mask), P = softmax(S) in f32, o = P·v. OpenMP over (token, head).
#pragma once

#include <cstddef>

namespace nibble::kernels {

// Dimension names: T new tokens at positions start_pos .. start_pos+T-1, H query heads,
// KV key/value heads (H % KV == 0), Dh head size; P = start_pos + T cached positions.
// q:   [T, H*Dh] f32, RoPE already applied.
// k,v: [>= P, KV*Dh] f32 cache rows; row p holds position p (RoPE applied to k).
// out: [T, H*Dh] f32, heads concatenated (must not alias q, k, v).
// scratch: [num_threads, P] f32 for the score rows.
// Query t attends to positions 0 .. start_pos + t. noexcept, no checks.
void CausalAttention(int num_threads, const float* q, const float* k, const float* v, float* out, size_t T,
                     size_t start_pos, size_t H, size_t KV, size_t Dh, float* scratch) noexcept;

// Scalar oracle: scores, softmax and weighted sum in double.
void CausalAttentionRef(const float* q, const float* k, const float* v, float* out, size_t T, size_t start_pos,
                        size_t H, size_t KV, size_t Dh) noexcept;

// Backward of CausalAttention for the same shapes. out: the forward's output [T, H*Dh]
// (D = do·o replaces the softmax's saved statistics); dout: [T, H*Dh] upstream.
// dq: [T, H*Dh] written; dk, dv: [P, KV*Dh] accumulated (+=), P = start_pos + T, so the
// gradient of cached or prefix rows (positions < start_pos) is included.
// scratch: CausalAttentionBackwardScratch(T, start_pos, H, KV, Dh) f32. KV head by KV head,
// its H/KV query heads stacked, as GEMMs (kernels/gemm.h: dP = dO·Vᵀ, dQ = dS·K,
// dK += dSᵀ·Q, dV += Pᵀ·dO, threaded inside), the probabilities recomputed from S = Q·Kᵀ
// by GEMM and the forward's softmax row code (OpenMP over rows).
// noexcept, no checks; dq, dk, dv must not alias the inputs or each other.
void CausalAttentionBackward(int num_threads, const float* q, const float* k, const float* v, const float* out,
                             const float* dout, float* dq, float* dk, float* dv, size_t T, size_t start_pos, size_t H,
                             size_t KV, size_t Dh, float* scratch) noexcept;

// Floats of scratch CausalAttentionBackward needs: 4·P·Dh + 3·R·Dh + 2·R·P, R = (H/KV)·T.
size_t CausalAttentionBackwardScratch(size_t T, size_t start_pos, size_t H, size_t KV, size_t Dh) noexcept;

// Scalar oracle: probabilities, D and the gradients in double (dk, dv accumulated).
void CausalAttentionBackwardRef(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                float* dk, float* dv, size_t T, size_t start_pos, size_t H, size_t KV,
                                size_t Dh) noexcept;

}  // namespace nibble::kernels
