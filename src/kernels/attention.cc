#include "kernels/attention.h"

#include "kernels/isa.h"
#include "kernels/simd/table.h"
#include "kernels/vector_ops.h"

namespace dsv3::kernels {

void latent_scores_ref(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                       int64_t rope, const float* row, float scale, float* out, int64_t out_stride) {
  for (int64_t h = 0; h < H; ++h)
    out[h * out_stride] = (dot_ref(qa + h * qa_stride, row, R) + dot_ref(qr + h * qr_stride, row + R, rope)) * scale;
}

void latent_scores(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                   int64_t rope, const float* row, float scale, float* out, int64_t out_stride) {
  if (reference_kernels())
    return latent_scores_ref(qa, qa_stride, qr, qr_stride, H, R, rope, row, scale, out, out_stride);
  if (const SimdKernels* k = active_simd())
    return k->latent_scores(qa, qa_stride, qr, qr_stride, H, R, rope, row, scale, out, out_stride);
  // The portable path: dot() is the portable loop here.
  for (int64_t h = 0; h < H; ++h)
    out[h * out_stride] = (dot(qa + h * qa_stride, row, R) + dot(qr + h * qr_stride, row + R, rope)) * scale;
}

void weighted_rows_ref(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                       int64_t c1, float* out, int64_t out_stride) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = c0; c < c1; ++c) {
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += p[h * p_stride + j] * rows[j][c];
      out[h * out_stride + (c - c0)] = s;
    }
}

void weighted_rows(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                   int64_t c1, float* out, int64_t out_stride) {
  if (!reference_kernels())
    if (const SimdKernels* k = active_simd()) return k->weighted_rows(p, p_stride, H, rows, n, c0, c1, out, out_stride);
  weighted_rows_ref(p, p_stride, H, rows, n, c0, c1, out, out_stride);
}

}  // namespace dsv3::kernels
