// Absorbed MLA over one block of cached latent rows in the official BF16 numerics
// (kernels/attention.h, latent_block_bf16): BF16 query x BF16 row scores (bf16.h's dot
// product), exp by the polynomial of kernels::exp_poly_ref, probabilities rounded to BF16,
// and their weighted sum of rows with exact products and fp32 sums, two rows per step in the
// order of vdpbf16ps (row j+1, then row j). Native vdpbf16ps where the TU has AVX512_BF16,
// fp32 FMAs on the exact products elsewhere: the same bits. Include only from simd/*.cc.
#pragma once

#include <cstdint>

#include "kernels/bf16.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

// The polynomial's coefficients after the first (Horner order).
constexpr float kExpPoly[] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                              5.0000001201e-1f, 1.0f,             1.0f};

// exp(x) as kernels::exp_poly_ref computes it (see there), one lane.
inline float exp_poly_lane(float x) {
  if (x != x) return x + 0.0f;
  x = x > -87.0f ? x : -87.0f;
  const float n = __builtin_nearbyintf(x * 1.44269504f);
  float r = __builtin_fmaf(n, -0.693359375f, x);
  r = __builtin_fmaf(n, 2.12194440e-4f, r);
  float y = 1.9875691500e-4f;
  for (float c : kExpPoly) y = __builtin_fmaf(y, r, c);
  const uint32_t e = uint32_t(int32_t(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &e, 4);
  return y * scale;
}

// x[i] = exp_poly(x[i]) for i < n: exp_poly_lane's steps on V::N lanes at a time.
inline void exp_poly_n(float* x, int64_t n) {
  constexpr int N = V::N;
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    // max returns its second operand when either is NaN: a NaN argument runs through as NaN.
    const typename V::F v = V::max(V::set1(-87.0f), V::load(x + i));
    const typename V::F k = V::round(V::mul(v, V::set1(1.44269504f)));
    typename V::F r = V::fma(k, V::set1(-0.693359375f), v);
    r = V::fma(k, V::set1(2.12194440e-4f), r);
    typename V::F y = V::set1(1.9875691500e-4f);
    for (float c : kExpPoly) y = V::fma(y, r, V::set1(c));
    V::store(x + i, V::mul(y, V::pow2(k)));
  }
  for (; i < n; ++i) x[i] = exp_poly_lane(x[i]);
}

#if defined(__AVX512F__)
// B::reduce of 16 accumulators at once (x[k] = a0[k] for k < 8, a1[k - 8] above): the same
// tree (lanes i + 8, then i + 4, i + 2, i + 1), done on four accumulators' lanes per
// instruction instead of one. Writes s[h * ss + r] = sum of row r's accumulator of head h,
// times scale.
inline void reduce16(const __m512* a0, const __m512* a1, float scale, float* s, int64_t ss) {
  __m512 x[16];
  for (int k = 0; k < 8; ++k) {
    x[k] = a0[k];
    x[8 + k] = a1[k];
  }
  __m512 t[8], u[4], w[2];
  for (int k = 0; k < 8; ++k)  // lanes i + 8: x[2k]'s 8 sums, then x[2k+1]'s
    t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0xEE));
  for (int k = 0; k < 4; ++k)  // lanes i + 4: 128-bit group g holds x[4k + g]'s 4 sums
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD));
  for (int k = 0; k < 2; ++k)  // lanes i + 2: group g holds 2 sums of x[8k + g], then of x[8k + 4 + g]
    w[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE));
  // lanes i + 1: lane 4g + r holds x[4r + g]
  const __m512 f = _mm512_mul_ps(_mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD)),
                                 _mm512_set1_ps(scale));
  alignas(64) float out[16];
  _mm512_store_ps(out, f);
  for (int g = 0; g < 4; ++g)
    for (int r = 0; r < 4; ++r) {
      const int k = 4 * r + g;  // head k % 8 of row k / 8
      s[(k % 8) * ss + k / 8] = out[4 * g + r];
    }
}
#endif

// Scores of HB heads against rows j and j+1: s[h * ss + j] = dot(q_h, x_j) * scale.
template <int HB>
inline void block_scores(const uint16_t* q, int64_t Dp, const uint16_t* x0, const uint16_t* x1, float scale, float* s,
                         int64_t ss) {
  typename B::Acc a0[HB], a1[HB];
  for (int h = 0; h < HB; ++h) a0[h] = a1[h] = B::zero();
#if defined(__AVX512BF16__)
  // The rows' chunks stay in registers across the heads: one load per product, not two.
  for (int64_t k = 0; k < Dp; k += 32) {
    const __m512i r0 = _mm512_loadu_si512(x0 + k), r1 = _mm512_loadu_si512(x1 + k);
    for (int h = 0; h < HB; ++h) {
      const __m512i qv = _mm512_loadu_si512(q + h * Dp + k);
      a0[h] = B::dp(a0[h], qv, r0);
      a1[h] = B::dp(a1[h], qv, r1);
    }
  }
#else
  for (int64_t k = 0; k < Dp; k += 32)
    for (int h = 0; h < HB; ++h) {
      a0[h] = B::dp(a0[h], q + h * Dp + k, x0 + k);
      a1[h] = B::dp(a1[h], q + h * Dp + k, x1 + k);
    }
#endif
#if defined(__AVX512F__)
  if constexpr (HB == 8) {
    reduce16(a0, a1, scale, s, ss);
    return;
  }
#endif
  for (int h = 0; h < HB; ++h) {
    s[h * ss] = B::reduce(a0[h]) * scale;
    s[h * ss + 1] = B::reduce(a1[h]) * scale;
  }
}

// acc[h * R + c ...] for HB heads and the CB x 16 columns at c: the pairs (j, j+1) of the
// block in order, each adding p[j+1] x[j+1][c] then p[j] x[j][c] (exact products, fp32
// adds). CB column vectors per pass reuse each broadcast weight pair.
template <int HB, int CB>
inline void block_values(const uint16_t* pb, int64_t ps, const uint16_t* const* x, int64_t nbp, int64_t c,
                         float* acc, int64_t R) {
#if defined(__AVX512BF16__)
  // Two rows' 16 columns interleaved word by word: (x_j[c], x_j+1[c], x_j[c+1], ...), so a
  // broadcast (p_j, p_j+1) pair makes each lane's step exactly the pair above.
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                       5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  __m512 a[HB][CB];
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < CB; ++b) a[h][b] = _mm512_setzero_ps();
  for (int64_t j = 0; j < nbp; j += 2) {
    __m512i xv[CB];
    for (int b = 0; b < CB; ++b) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[j] + c + 16 * b));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[j + 1] + c + 16 * b));
      xv[b] = _mm512_permutexvar_epi16(idx, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
    for (int h = 0; h < HB; ++h) {
      uint32_t pair;
      __builtin_memcpy(&pair, pb + h * ps + j, 4);
      const __m512bh w = (__m512bh)_mm512_set1_epi32(int(pair));
      for (int b = 0; b < CB; ++b) a[h][b] = _mm512_dpbf16_ps(a[h][b], w, (__m512bh)xv[b]);
    }
  }
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < CB; ++b) _mm512_storeu_ps(acc + h * R + c + 16 * b, a[h][b]);
#elif defined(__AVX512F__)
  __m512 a[HB][CB];
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < CB; ++b) a[h][b] = _mm512_setzero_ps();
  for (int64_t j = 0; j < nbp; j += 2) {
    __m512 x0[CB], x1[CB];
    for (int b = 0; b < CB; ++b) {
      x0[b] = V::load_bf16(x[j] + c + 16 * b);
      x1[b] = V::load_bf16(x[j + 1] + c + 16 * b);
    }
    for (int h = 0; h < HB; ++h) {
      const __m512 w1 = _mm512_set1_ps(bf16_value(pb[h * ps + j + 1])), w0 = _mm512_set1_ps(bf16_value(pb[h * ps + j]));
      for (int b = 0; b < CB; ++b) a[h][b] = _mm512_fmadd_ps(w0, x0[b], _mm512_fmadd_ps(w1, x1[b], a[h][b]));
    }
  }
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < CB; ++b) _mm512_storeu_ps(acc + h * R + c + 16 * b, a[h][b]);
#else
  __m256 a[HB][2 * CB];
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < 2 * CB; ++b) a[h][b] = _mm256_setzero_ps();
  for (int64_t j = 0; j < nbp; j += 2) {
    __m256 x0[2 * CB], x1[2 * CB];
    for (int b = 0; b < 2 * CB; ++b) {
      x0[b] = V::load_bf16(x[j] + c + 8 * b);
      x1[b] = V::load_bf16(x[j + 1] + c + 8 * b);
    }
    for (int h = 0; h < HB; ++h) {
      const __m256 w1 = _mm256_set1_ps(bf16_value(pb[h * ps + j + 1])), w0 = _mm256_set1_ps(bf16_value(pb[h * ps + j]));
      for (int b = 0; b < 2 * CB; ++b) a[h][b] = _mm256_fmadd_ps(w0, x0[b], _mm256_fmadd_ps(w1, x1[b], a[h][b]));
    }
  }
  for (int h = 0; h < HB; ++h)
    for (int b = 0; b < 2 * CB; ++b) _mm256_storeu_ps(acc + h * R + c + 8 * b, a[h][b]);
#endif
}

// One head's block softmax: m = max s_j; p_j = exp_poly(s_j - m); l = sum p_j in 16 lanes
// (lane j % 16, in j order) summed as a tree; pb[j] = bf16(p_j), and a zero after an odd
// count. p_j >= exp(-87) > FLT_MIN and <= 1, so its BF16 rounding needs no special cases.
inline void softmax_block(const float* sh, int64_t nb, uint16_t* pb, float& m, float& l) {
  float mx = sh[0];
  for (int64_t j = 1; j < nb; ++j) mx = sh[j] > mx ? sh[j] : mx;
  float lane[16] = {};
  int64_t j = 0;
#if defined(__AVX512F__)
  __m512 sum = _mm512_setzero_ps();
  alignas(64) float e[16];
  for (; j + 16 <= nb; j += 16) {
    _mm512_store_ps(e, _mm512_sub_ps(_mm512_loadu_ps(sh + j), _mm512_set1_ps(mx)));
    exp_poly_n(e, 16);
    const __m512 p = _mm512_load_ps(e);
    sum = _mm512_add_ps(sum, p);
    const __m512i u = _mm512_castps_si512(p);
    const __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)),
                         _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))),
        16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb + j), _mm512_cvtepi32_epi16(r));
  }
  _mm512_storeu_ps(lane, sum);
#elif defined(__AVX2__)
  __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  alignas(32) float e[16];
  for (; j + 16 <= nb; j += 16) {
    _mm256_store_ps(e, _mm256_sub_ps(_mm256_loadu_ps(sh + j), _mm256_set1_ps(mx)));
    _mm256_store_ps(e + 8, _mm256_sub_ps(_mm256_loadu_ps(sh + j + 8), _mm256_set1_ps(mx)));
    exp_poly_n(e, 16);
    sum0 = _mm256_add_ps(sum0, _mm256_load_ps(e));
    sum1 = _mm256_add_ps(sum1, _mm256_load_ps(e + 8));
    for (int i = 0; i < 16; ++i) pb[j + i] = bf16_round(e[i]);
  }
  _mm256_storeu_ps(lane, sum0);
  _mm256_storeu_ps(lane + 8, sum1);
#endif
  for (; j < nb; ++j) {
    const float p = exp_poly_lane(sh[j] - mx);
    lane[j % 16] += p;
    pb[j] = bf16_round(p);
  }
  if (nb & 1) pb[nb] = 0;
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) lane[i] += lane[i + w];
  m = mx;
  l = lane[0];
}

inline void latent_block_bf16(const uint16_t* q, int64_t H, int64_t Dp, int64_t R, const uint16_t* const* x, int64_t nb,
                              float scale, float* s, uint16_t* pb, float* m, float* l, float* acc) {
  const int64_t nbp = nb + (nb & 1);  // x has a zero row after an odd count
  constexpr int HS = V::N == 16 ? 8 : 4;
  for (int64_t j = 0; j < nbp; j += 2) {
    // The rows may come from memory (the model reads a BF16 cache in place) and are first
    // read here: fetch the pair 8 rows ahead into L2, where the values pass finds them too
    // (into L1 this far ahead measured slower). One thread on a cold 128K-row cache:
    // 92-98 -> 137-151 GFLOP/s (kernels_bench BM_LatentBlockCold; 156-168 from L2).
    constexpr int64_t kAhead = 8;
    for (int64_t f = j + kAhead; f < j + kAhead + 2 && f < nbp; ++f)
      for (int64_t i = 0; i < Dp; i += 32) __builtin_prefetch(x[f] + i, 0, 2);
    int64_t h = 0;
    for (; h + HS <= H; h += HS)
      block_scores<HS>(q + h * Dp, Dp, x[j], x[j + 1], scale, s + h * nbp + j, nbp);
    for (; h < H; ++h) block_scores<1>(q + h * Dp, Dp, x[j], x[j + 1], scale, s + h * nbp + j, nbp);
  }
  for (int64_t h = 0; h < H; ++h) softmax_block(s + h * nbp, nb, pb + h * nbp, m[h], l[h]);
  // Register tiles: heads x 16-column vectors (AVX-512 native 4 x 4, emulated 4 x 2; AVX2
  // 2 x 1 in pairs of 8-wide halves).
#if defined(__AVX512BF16__)
  constexpr int HV = 4, CV = 4;
#elif defined(__AVX512F__)
  constexpr int HV = 4, CV = 2;
#else
  constexpr int HV = 2, CV = 1;
#endif
  const int64_t cv = R / 16 * 16;
  for (int64_t c = 0; c < cv;) {
    const bool wide = c + 16 * CV <= cv;
    int64_t h = 0;
    for (; h + HV <= H; h += HV) {
      if (wide) block_values<HV, CV>(pb + h * nbp, nbp, x, nbp, c, acc + h * R, R);
      else block_values<HV, 1>(pb + h * nbp, nbp, x, nbp, c, acc + h * R, R);
    }
    for (; h < H; ++h) {
      if (wide) block_values<1, CV>(pb + h * nbp, nbp, x, nbp, c, acc + h * R, R);
      else block_values<1, 1>(pb + h * nbp, nbp, x, nbp, c, acc + h * R, R);
    }
    c += wide ? 16 * CV : 16;
  }
  for (int64_t h = 0; h < H; ++h)  // columns past the last 16: one lane's steps
    for (int64_t c = cv; c < R; ++c) {
      float a = 0;
      for (int64_t j = 0; j < nbp; j += 2) {
        a += bf16_value(pb[h * nbp + j + 1]) * bf16_value(x[j + 1][c]);
        a += bf16_value(pb[h * nbp + j]) * bf16_value(x[j][c]);
      }
      acc[h * R + c] = a;
    }
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
