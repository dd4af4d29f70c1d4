#include "kernels/attention.h"

#include <cmath>
#include <cstring>

#include "kernels/bf16.h"
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

float exp_poly_ref(float x) {
  if (x != x) return x + 0.0f;  // NaN stays NaN (quieted), as in the vector lanes
  x = x > -87.0f ? x : -87.0f;
  const float n = std::nearbyint(x * 1.44269504f);
  float r = std::fma(n, -0.693359375f, x);  // x - n ln 2, ln 2 in two parts
  r = std::fma(n, 2.12194440e-4f, r);
  float y = 1.9875691500e-4f;
  for (float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f, 1.0f, 1.0f})
    y = std::fma(y, r, c);
  const uint32_t e = uint32_t(int32_t(n) + 127) << 23;  // 2^n: n >= -126 since x >= -87
  float scale;
  std::memcpy(&scale, &e, 4);
  return y * scale;
}

void latent_block_bf16_ref(const uint16_t* q, int64_t H, int64_t Dp, int64_t R, const uint16_t* const* x, int64_t nb,
                           float scale, float* s, uint16_t* pb, float* m, float* l, float* acc) {
  const int64_t nbp = nb + (nb & 1);
  for (int64_t h = 0; h < H; ++h) {
    float* sh = s + h * nbp;
    for (int64_t j = 0; j < nb; ++j) sh[j] = bf16_dot_ref(q + h * Dp, x[j], Dp) * scale;
    float mx = sh[0];
    for (int64_t j = 1; j < nb; ++j) mx = sh[j] > mx ? sh[j] : mx;
    float lane[16] = {};
    for (int64_t j = 0; j < nb; ++j) {
      sh[j] = exp_poly_ref(sh[j] - mx);
      lane[j % 16] += sh[j];
    }
    for (int w = 8; w >= 1; w /= 2)
      for (int i = 0; i < w; ++i) lane[i] += lane[i + w];
    m[h] = mx;
    l[h] = lane[0];
    for (int64_t j = 0; j < nb; ++j) pb[h * nbp + j] = bf16_round(sh[j]);
    if (nb & 1) pb[h * nbp + nb] = 0;
    for (int64_t c = 0; c < R; ++c) {
      float a = 0;
      for (int64_t j = 0; j < nbp; j += 2) {
        a += bf16_operand(pb[h * nbp + j + 1]) * bf16_operand(x[j + 1][c]);
        a += bf16_operand(pb[h * nbp + j]) * bf16_operand(x[j][c]);
      }
      acc[h * R + c] = a;
    }
  }
}

void latent_block_bf16(const uint16_t* q, int64_t H, int64_t Dp, int64_t R, const uint16_t* const* x, int64_t nb,
                       float scale, float* s, uint16_t* pb, float* m, float* l, float* acc) {
  if (!reference_kernels())
    if (const SimdKernels* k = active_simd()) return k->latent_block_bf16(q, H, Dp, R, x, nb, scale, s, pb, m, l, acc);
  latent_block_bf16_ref(q, H, Dp, R, x, nb, scale, s, pb, m, l, acc);
}

}  // namespace dsv3::kernels
