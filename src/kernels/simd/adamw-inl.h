// The AdamW update (kernels/adamw.h) for the ISA translation unit that includes this: the
// twin's double-precision operations lane by lane (no FMA contraction: a vector mul then add
// rounds as the twin's two scalar operations do), BF16 moments rounded by bf16.h's steps.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/adamw.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

#if defined(__AVX2__)
// bf16_value(bf16_round(x)) on 8 lanes: zero and subnormals to signed zero, NaN made quiet,
// the rest rounded to nearest even.
inline __m256 adamw_bf16_keep(__m256 x) {
  const __m256i u = _mm256_castps_si256(x), keep = _mm256_set1_epi32(int(0xFFFF0000u));
  __m256i r = _mm256_and_si256(
      _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)),
                       _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))),
      keep);
  const __m256i tiny = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7F800000)), _mm256_setzero_si256());
  r = _mm256_blendv_epi8(r, _mm256_and_si256(u, _mm256_set1_epi32(int(0x80000000u))), tiny);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_and_si256(_mm256_or_si256(u, _mm256_set1_epi32(0x400000)), keep), nan);
  return _mm256_castsi256_ps(r);
}
#endif

inline void adamw_update(const AdamWStep& s, float* w, const float* grad, float* m, float* v, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512d b1 = _mm512_set1_pd(s.b1), b2 = _mm512_set1_pd(s.b2), ob1 = _mm512_set1_pd(1.0 - s.b1),
                ob2 = _mm512_set1_pd(1.0 - s.b2), c1 = _mm512_set1_pd(s.c1), c2 = _mm512_set1_pd(s.c2),
                lr = _mm512_set1_pd(s.lr), eps = _mm512_set1_pd(s.eps), decay = _mm512_set1_pd(s.decay);
  for (; i + 8 <= n; i += 8) {
    const __m512d g = _mm512_cvtps_pd(_mm256_loadu_ps(grad + i));
    const __m512d mi =
        _mm512_add_pd(_mm512_mul_pd(b1, _mm512_cvtps_pd(_mm256_loadu_ps(m + i))), _mm512_mul_pd(ob1, g));
    const __m512d vi = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_cvtps_pd(_mm256_loadu_ps(v + i))),
                                     _mm512_mul_pd(_mm512_mul_pd(ob2, g), g));
    __m256 mf = _mm512_cvtpd_ps(mi), vf = _mm512_cvtpd_ps(vi);
    if (s.bf16_moments) {
      mf = adamw_bf16_keep(mf);
      vf = adamw_bf16_keep(vf);
    }
    _mm256_storeu_ps(m + i, mf);
    _mm256_storeu_ps(v + i, vf);
    const __m512d step = _mm512_div_pd(_mm512_mul_pd(lr, _mm512_div_pd(mi, c1)),
                                       _mm512_add_pd(_mm512_sqrt_pd(_mm512_div_pd(vi, c2)), eps));
    const __m512d wd = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(w + i)), decay);
    _mm256_storeu_ps(w + i, _mm512_cvtpd_ps(_mm512_sub_pd(wd, step)));
  }
#elif defined(__AVX2__)
  const __m256d b1 = _mm256_set1_pd(s.b1), b2 = _mm256_set1_pd(s.b2), ob1 = _mm256_set1_pd(1.0 - s.b1),
                ob2 = _mm256_set1_pd(1.0 - s.b2), c1 = _mm256_set1_pd(s.c1), c2 = _mm256_set1_pd(s.c2),
                lr = _mm256_set1_pd(s.lr), eps = _mm256_set1_pd(s.eps), decay = _mm256_set1_pd(s.decay);
  for (; i + 8 <= n; i += 8) {
    __m128 mh[2], vh[2], wh[2];
    __m256d mi[2], vi[2];
    for (int h = 0; h < 2; ++h) {
      const int64_t j = i + 4 * h;
      const __m256d g = _mm256_cvtps_pd(_mm_loadu_ps(grad + j));
      mi[h] = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(m + j))), _mm256_mul_pd(ob1, g));
      vi[h] = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(v + j))),
                            _mm256_mul_pd(_mm256_mul_pd(ob2, g), g));
      mh[h] = _mm256_cvtpd_ps(mi[h]);
      vh[h] = _mm256_cvtpd_ps(vi[h]);
      const __m256d step = _mm256_div_pd(_mm256_mul_pd(lr, _mm256_div_pd(mi[h], c1)),
                                         _mm256_add_pd(_mm256_sqrt_pd(_mm256_div_pd(vi[h], c2)), eps));
      wh[h] = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + j)), decay), step));
    }
    __m256 mf = _mm256_set_m128(mh[1], mh[0]), vf = _mm256_set_m128(vh[1], vh[0]);
    if (s.bf16_moments) {
      mf = adamw_bf16_keep(mf);
      vf = adamw_bf16_keep(vf);
    }
    _mm256_storeu_ps(m + i, mf);
    _mm256_storeu_ps(v + i, vf);
    _mm256_storeu_ps(w + i, _mm256_set_m128(wh[1], wh[0]));
  }
#endif
  adamw_update_ref(s, w + i, grad + i, m + i, v + i, n - i);
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
