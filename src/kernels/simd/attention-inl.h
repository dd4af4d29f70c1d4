// The fast attention kernels over cached latent rows (scores, probability-weighted sums) and
// the fp32 vector primitives, written once over the vector traits V of the including
// translation unit (simd/avx2.cc, simd/avx512.cc). Include only from those.
//
// No standard-library templates or shared inline helpers are used in simd/*-inl.h: this
// code is built with ISA flags, and an out-of-line copy of such a function could be picked
// by the linker for generic code, which would then crash on older CPUs. Scratch memory
// comes from the caller for the same reason.
#pragma once

#include <cstdint>

namespace dsv3::kernels::DSV3_SIMD_NS {

inline float dot(const float* a, const float* b, int64_t n) {
  constexpr int N = V::N;
  typename V::F acc0 = V::zero(), acc1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = V::fma(V::load(a + i), V::load(b + i), acc0);
    acc1 = V::fma(V::load(a + i + N), V::load(b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = V::fma(V::load(a + i), V::load(b + i), acc0);
  float s = V::sum(V::add(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float a, const float* x, float* y, int64_t n) {
  constexpr int N = V::N;
  const typename V::F av = V::set1(a);
  int64_t i = 0;
  for (; i + N <= n; i += N) V::store(y + i, V::fma(av, V::load(x + i), V::load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// out[h][c - c0] = sum over j < n of p[h][j] * rows[j][c], for c in [c0, c1): the values
// half of attention over cached latents. Accumulators for 4 heads x a few vectors of
// columns stay in registers across all j (an axpy per (j, head) would load and store the
// output every time). Each term is one fused multiply-add in j order, exactly as repeated
// axpy calls would compute it; a row whose weights are all zero is skipped (adding 0 * x
// changes nothing).
template <int HB, int CB>
inline void weighted_block(const float* p, int64_t p_stride, const float* const* rows, int64_t j0, int64_t j1,
                           int64_t c, float* out, int64_t out_stride) {
  constexpr int N = V::N;
  typename V::F acc[HB][CB];
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < CB; ++b) acc[h][b] = j0 == 0 ? V::zero() : V::load(out + h * out_stride + b * N);
  for (int64_t j = j0; j < j1; ++j) {
    float w[HB];
    bool any = false;
    for (int h = 0; h < HB; ++h) {
      w[h] = p[h * p_stride + j];
      any |= w[h] != 0.0f;
    }
    if (!any) continue;
    typename V::F xv[CB];
    for (int b = 0; b < CB; ++b) xv[b] = V::load(rows[j] + c + b * N);
    for (int h = 0; h < HB; ++h) {
      const typename V::F wv = V::set1(w[h]);
      for (int b = 0; b < CB; ++b) acc[h][b] = V::fma(wv, xv[b], acc[h][b]);
    }
  }
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < CB; ++b) V::store(out + h * out_stride + b * N, acc[h][b]);
}

template <int HB>
inline void weighted_heads(const float* p, int64_t p_stride, const float* const* rows, int64_t j0, int64_t j1,
                           int64_t c0, int64_t c1, float* out, int64_t out_stride) {
  constexpr int N = V::N;
  constexpr int CB = N == 16 ? 4 : 2;  // 16 (AVX-512) or 8 (AVX2) accumulators
  int64_t c = c0;
  for (; c + CB * N <= c1; c += CB * N)
    weighted_block<HB, CB>(p, p_stride, rows, j0, j1, c, out + (c - c0), out_stride);
  for (; c + N <= c1; c += N) weighted_block<HB, 1>(p, p_stride, rows, j0, j1, c, out + (c - c0), out_stride);
  for (; c < c1; ++c)
    for (int h = 0; h < HB; ++h) {
      float s = j0 == 0 ? 0.0f : out[h * out_stride + (c - c0)];
      for (int64_t j = j0; j < j1; ++j) s += p[h * p_stride + j] * rows[j][c];  // unfused, like axpy's tail
      out[h * out_stride + (c - c0)] = s;
    }
}

// Positions per pass: a pass's rows (256 x up to a few KB) stay in L2 while every head and
// column block reads them; the partial sums wait in `out` between passes, which leaves
// every value and its order of operations unchanged.
constexpr int64_t kWeightedChunk = 256;

inline void weighted_rows(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                          int64_t c1, float* out, int64_t out_stride) {
  for (int64_t j0 = 0; j0 < n || j0 == 0; j0 += kWeightedChunk) {
    const int64_t j1 = j0 + kWeightedChunk < n ? j0 + kWeightedChunk : n;
    int64_t h = 0;
    for (; h + 4 <= H; h += 4)
      weighted_heads<4>(p + h * p_stride, p_stride, rows, j0, j1, c0, c1, out + h * out_stride, out_stride);
    for (; h < H; ++h)
      weighted_heads<1>(p + h * p_stride, p_stride, rows, j0, j1, c0, c1, out + h * out_stride, out_stride);
    if (n == 0) break;
  }
}

// Attention scores of H heads against one cached latent row: out[h * out_stride] =
// (qa_h . row[0, R) + qr_h . row[R, R + rope)) * scale, both parts in one accumulator per
// head, 8 heads at a time (the row is loaded once per 8 heads, and there is one call per
// position rather than two dot products per head).
template <int HB>
inline void score_heads(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t R, int64_t rope,
                        const float* row, float scale, float* out, int64_t out_stride) {
  constexpr int N = V::N;
  typename V::F acc[HB];
  for (int h = 0; h < HB; ++h) acc[h] = V::zero();
  const int64_t rv = R / N * N, pv = rope / N * N;
  for (int64_t k = 0; k < rv; k += N) {
    const typename V::F xv = V::load(row + k);
    for (int h = 0; h < HB; ++h) acc[h] = V::fma(V::load(qa + h * qa_stride + k), xv, acc[h]);
  }
  for (int64_t k = 0; k < pv; k += N) {
    const typename V::F xv = V::load(row + R + k);
    for (int h = 0; h < HB; ++h) acc[h] = V::fma(V::load(qr + h * qr_stride + k), xv, acc[h]);
  }
  for (int h = 0; h < HB; ++h) {
    float s = V::sum(acc[h]);
    for (int64_t k = rv; k < R; ++k) s += qa[h * qa_stride + k] * row[k];
    for (int64_t k = pv; k < rope; ++k) s += qr[h * qr_stride + k] * row[R + k];
    out[h * out_stride] = s * scale;
  }
}

inline void latent_scores(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                          int64_t rope, const float* row, float scale, float* out, int64_t out_stride) {
  int64_t h = 0;
  for (; h + 8 <= H; h += 8)
    score_heads<8>(qa + h * qa_stride, qa_stride, qr + h * qr_stride, qr_stride, R, rope, row, scale,
                   out + h * out_stride, out_stride);
  for (; h < H; ++h)
    score_heads<1>(qa + h * qa_stride, qa_stride, qr + h * qr_stride, qr_stride, R, rope, row, scale,
                   out + h * out_stride, out_stride);
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
