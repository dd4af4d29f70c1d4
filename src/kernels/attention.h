// The inner loops of attention over cached latent rows (multi-head latent attention in its
// absorbed form): the scores of all heads against one cached row, and the probability-
// weighted sum of cached rows. Each has a scalar twin.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

//! Attention scores of H heads against one cached latent row [R + rope]:
//! out[h * out_stride] = (qa_h . row[0, R) + qr_h . row[R, R + rope)) * scale, where qa_h =
//! qa + h * qa_stride (the absorbed query) and qr_h = qr + h * qr_stride (its rope part).
void latent_scores(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                   int64_t rope, const float* row, float scale, float* out, int64_t out_stride);
void latent_scores_ref(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                       int64_t rope, const float* row, float scale, float* out, int64_t out_stride);

//! out[h * out_stride + c - c0] = sum_{j < n} p[h * p_stride + j] * rows[j][c] for h < H and
//! c in [c0, c1), summed in j order (attention's probability-weighted sum of cached rows).
//! The fast path fuses each multiply-add; the scalar twin does not.
void weighted_rows(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                   int64_t c1, float* out, int64_t out_stride);
void weighted_rows_ref(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                       int64_t c1, float* out, int64_t out_stride);

//! Rows per block of latent_block_bf16. The partition of a sequence into blocks is fixed,
//! so results depend neither on the thread count nor on how blocks are spread over threads.
constexpr int64_t kLatentBlockRows = 256;

//! Absorbed attention of H heads over one block of nb cached latent rows in the official
//! inference's BF16 numerics (ARCHITECTURE.md): q [H][Dp] is each head's absorbed query and
//! rope query in BF16, zero-padded to Dp (a multiple of 32); x[j] (j < nb, and a zero row
//! x[nb] when nb is odd) the block's BF16 rows, each Dp values long (zeros past the latent).
//! Writes, per head h:
//!   m[h] = max_j s_j, where s_j = bf16_dot(q_h, x_j) * scale (kernels/bf16.h's order);
//!   l[h] = sum_j p_j, p_j = exp_poly(s_j - m[h]), in 16 lanes (lane j % 16) summed as a tree;
//!   acc[h * R + c] = sum_j bf16(p_j) * x_j[c] for c < R, two rows per step, j+1 then j
//!   (vdpbf16ps's order: exact products, fp32 adds).
//! Scratch: s holds H * (nb + 1) floats, pb H * (nb + 1) BF16 values.
void latent_block_bf16(const uint16_t* q, int64_t H, int64_t Dp, int64_t R, const uint16_t* const* x, int64_t nb,
                       float scale, float* s, uint16_t* pb, float* m, float* l, float* acc);
void latent_block_bf16_ref(const uint16_t* q, int64_t H, int64_t Dp, int64_t R, const uint16_t* const* x, int64_t nb,
                           float scale, float* s, uint16_t* pb, float* m, float* l, float* acc);

//! exp(x) for the BF16 attention's softmax: a Cody-Waite reduction by ln 2 and a degree-7
//! polynomial (Cephes' expf coefficients), every step one fp32 operation or FMA, so vector
//! lanes (simd/latent_bf16-inl.h) give the same bits. Within a few ulp of exp on [-87, 88];
//! arguments below -87 count as -87; NaN gives NaN.
float exp_poly_ref(float x);

}  // namespace dsv3::kernels
