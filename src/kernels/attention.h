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

}  // namespace dsv3::kernels
