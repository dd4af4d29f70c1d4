// The fast loops of training's low-precision operands (kernels/quant.h), for the ISA
// translation unit that includes this (simd/avx2.cc, simd/avx512.cc, simd/avx512bf16.cc).
// Each takes the bit steps of its scalar twin (bf16.h: e4m3_nearest, bf16_round) lane by
// lane, so the results are the twin's bits; the tails run the twin's own steps.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

// m[i] = max(m[i], |x[i]|); a NaN in x leaves m as it was.
inline void abs_max(const float* x, int64_t n, float* m) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  for (; i + 16 <= n; i += 16) {
    const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), abs_mask));
    _mm512_storeu_ps(m + i, _mm512_max_ps(a, _mm512_loadu_ps(m + i)));  // NaN a: the second operand
  }
#elif defined(__AVX2__)
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
    _mm256_storeu_ps(m + i, _mm256_max_ps(a, _mm256_loadu_ps(m + i)));
  }
#endif
  for (; i < n; ++i) m[i] = std::max(m[i], std::fabs(x[i]));
}

// max(0, |x[i]| over i < n), NaNs ignored (as abs_max and the twin's std::max leave them).
inline float abs_max_of(const float* x, int64_t n) {
  int64_t i = 0;
  float m = 0.0f;
#if defined(__AVX512F__)
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16)
    acc = _mm512_max_ps(_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), abs_mask)),
                        acc);  // NaN: the second operand
  m = _mm512_reduce_max_ps(acc);
#elif defined(__AVX2__)
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) acc = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), acc);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (float l : lanes) m = std::max(m, l);
#endif
  for (; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// out[i] = e4m3_round(x[i] / s[i]) * s[i], or without the "* s[i]" (the e4m3 value itself)
// when !rescale.
inline void e4m3_scaled(const float* x, const float* s, int64_t n, bool rescale, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512i sign_mask = _mm512_set1_epi32(int(0x80000000u)), abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i bias = _mm512_set1_epi32(0x7FFFF), keep = _mm512_set1_epi32(int(0xFFF00000u)), one = _mm512_set1_epi32(1);
  const __m512 magic = _mm512_set1_ps(12582912.0f), k512 = _mm512_set1_ps(512.0f), inv512 = _mm512_set1_ps(1.0f / 512.0f);
  const __m512 min_normal = _mm512_set1_ps(0.015625f), max_val = _mm512_set1_ps(448.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 sc = _mm512_loadu_ps(s + i);
    const __m512i u = _mm512_castps_si512(_mm512_div_ps(_mm512_loadu_ps(x + i), sc));
    const __m512i au = _mm512_and_si512(u, abs_mask);
    const __m512 a = _mm512_castsi512_ps(au);
    const __m512i q = _mm512_and_si512(
        _mm512_add_epi32(_mm512_add_epi32(au, bias), _mm512_and_si512(_mm512_srli_epi32(au, 20), one)), keep);
    const __m512 sub = _mm512_mul_ps(_mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(a, k512), magic), magic), inv512);
    __m512 r = _mm512_mask_mov_ps(sub, _mm512_cmp_ps_mask(a, min_normal, _CMP_GE_OQ), _mm512_castsi512_ps(q));
    r = _mm512_min_ps(max_val, r);  // NaN r: the second operand, so NaN stays
    r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(u, sign_mask)));
    _mm512_storeu_ps(out + i, rescale ? _mm512_mul_ps(r, sc) : r);
  }
#elif defined(__AVX2__)
  const __m256i sign_mask = _mm256_set1_epi32(int(0x80000000u)), abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  const __m256i bias = _mm256_set1_epi32(0x7FFFF), keep = _mm256_set1_epi32(int(0xFFF00000u)), one = _mm256_set1_epi32(1);
  const __m256 magic = _mm256_set1_ps(12582912.0f), k512 = _mm256_set1_ps(512.0f), inv512 = _mm256_set1_ps(1.0f / 512.0f);
  const __m256 min_normal = _mm256_set1_ps(0.015625f), max_val = _mm256_set1_ps(448.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 sc = _mm256_loadu_ps(s + i);
    const __m256i u = _mm256_castps_si256(_mm256_div_ps(_mm256_loadu_ps(x + i), sc));
    const __m256i au = _mm256_and_si256(u, abs_mask);
    const __m256 a = _mm256_castsi256_ps(au);
    const __m256i q = _mm256_and_si256(
        _mm256_add_epi32(_mm256_add_epi32(au, bias), _mm256_and_si256(_mm256_srli_epi32(au, 20), one)), keep);
    const __m256 sub = _mm256_mul_ps(_mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(a, k512), magic), magic), inv512);
    __m256 r = _mm256_blendv_ps(sub, _mm256_castsi256_ps(q), _mm256_cmp_ps(a, min_normal, _CMP_GE_OQ));
    r = _mm256_min_ps(max_val, r);
    r = _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(r), _mm256_and_si256(u, sign_mask)));
    _mm256_storeu_ps(out + i, rescale ? _mm256_mul_ps(r, sc) : r);
  }
#endif
  for (; i < n; ++i) {
    const float q = e4m3_nearest(x[i] / s[i]);
    out[i] = rescale ? q * s[i] : q;
  }
}

// bytes[i] = the one-byte e4m3 encoding of x[i], an e4m3 value (fp8_quant's codes; NaN ->
// 0x7F with its sign). |x| * 2^-120 moves the e4m3 exponent and mantissa to bits 20-26 of
// the fp32 word, exactly: e4m3 subnormals (k * 2^-9) land on fp32 subnormals (k * 2^-129).
inline void e4m3_bytes(const float* x, int64_t n, uint8_t* bytes) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), nan_code = _mm512_set1_epi32(0x7F);
  const __m512 down = _mm512_set1_ps(0x1p-120f);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512i u = _mm512_castps_si512(v);
    const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(u, abs_mask));
    __m512i b = _mm512_srli_epi32(_mm512_castps_si512(_mm512_mul_ps(a, down)), 20);
    b = _mm512_mask_mov_epi32(b, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), nan_code);
    b = _mm512_or_si512(b, _mm512_srli_epi32(_mm512_andnot_si512(abs_mask, u), 24));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + i), _mm512_cvtepi32_epi8(b));
  }
#elif defined(__AVX2__)
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), nan_code = _mm256_set1_epi32(0x7F);
  const __m256 down = _mm256_set1_ps(0x1p-120f);
  // The low byte of each dword, per 128-bit half.
  const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                                             -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i u = _mm256_castps_si256(v);
    const __m256 a = _mm256_castsi256_ps(_mm256_and_si256(u, abs_mask));
    __m256i b = _mm256_srli_epi32(_mm256_castps_si256(_mm256_mul_ps(a, down)), 20);
    b = _mm256_blendv_epi8(b, nan_code, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    b = _mm256_shuffle_epi8(_mm256_or_si256(b, _mm256_srli_epi32(_mm256_andnot_si256(abs_mask, u), 24)), low_bytes);
    const int32_t lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(b)), hi = _mm256_extract_epi32(b, 4);
    std::memcpy(bytes + i, &lo, 4);
    std::memcpy(bytes + i + 4, &hi, 4);
  }
#endif
  for (; i < n; ++i) bytes[i] = e4m3_byte(x[i]);
}

#if defined(__AVX512F__)
// The e4m3 values of 16 bytes (one per dword lane, zero-extended): e4m3_bytes's shift undone.
inline __m512 e4m3_widen16(__m512i b) {
  const __m512i mag = _mm512_set1_epi32(0x7F), sign = _mm512_set1_epi32(0x80);
  const __m512i m = _mm512_and_si512(b, mag);
  __m512 v = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(m, 20)), _mm512_set1_ps(0x1p120f));
  v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(m, mag), _mm512_set1_ps(NAN));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), _mm512_slli_epi32(_mm512_and_si512(b, sign), 24)));
}
#endif

// out[i] = the e4m3 value of bytes[i] times s: e4m3_bytes's shift undone, times 2^120 (exact),
// then times s (one rounding, as code * scale rounds in fp8_quant's twin).
inline void e4m3_from_bytes(const uint8_t* bytes, int64_t n, float s, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 scale = _mm512_set1_ps(s);
  for (; i + 16 <= n; i += 16) {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i)));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(e4m3_widen16(b), scale));
  }
#elif defined(__AVX2__)
  const __m256i mag = _mm256_set1_epi32(0x7F), sign = _mm256_set1_epi32(0x80);
  const __m256 up = _mm256_set1_ps(0x1p120f), scale = _mm256_set1_ps(s), nan = _mm256_set1_ps(NAN);
  for (; i + 8 <= n; i += 8) {
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes + i)));
    const __m256i m = _mm256_and_si256(b, mag);
    __m256 v = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(m, 20)), up);
    v = _mm256_blendv_ps(v, nan, _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, mag)));
    v = _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(v), _mm256_slli_epi32(_mm256_and_si256(b, sign), 24)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(v, scale));
  }
#endif
  for (; i < n; ++i) out[i] = e4m3_from_byte(bytes[i]) * s;
}

// out[i] = x[i] rounded to BF16 (bf16_round's steps: ties to even, subnormals to signed
// zero, NaN quieted).
inline void bf16_round_n(const float* x, int64_t n, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512i exp_mask = _mm512_set1_epi32(0x7F800000), sign_mask = _mm512_set1_epi32(int(0x80000000u));
  const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), keep = _mm512_set1_epi32(int(0xFFFF0000u));
  const __m512i quiet = _mm512_set1_epi32(0x400000);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512i u = _mm512_castps_si512(v);
    __m512i r = _mm512_and_si512(
        _mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(_mm512_srli_epi32(u, 16), one)), keep);
    r = _mm512_mask_mov_epi32(r, _mm512_testn_epi32_mask(u, exp_mask), _mm512_and_si512(u, sign_mask));
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_and_si512(_mm512_or_si512(u, quiet), keep));
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(r));
  }
#elif defined(__AVX2__)
  const __m256i exp_mask = _mm256_set1_epi32(0x7F800000), sign_mask = _mm256_set1_epi32(int(0x80000000u));
  const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), keep = _mm256_set1_epi32(int(0xFFFF0000u));
  const __m256i quiet = _mm256_set1_epi32(0x400000), zero = _mm256_setzero_si256();
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i u = _mm256_castps_si256(v);
    __m256i r = _mm256_and_si256(
        _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(_mm256_srli_epi32(u, 16), one)), keep);
    const __m256i tiny = _mm256_cmpeq_epi32(_mm256_and_si256(u, exp_mask), zero);
    r = _mm256_blendv_epi8(r, _mm256_and_si256(u, sign_mask), tiny);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_and_si256(_mm256_or_si256(u, quiet), keep), nan);
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(r));
  }
#endif
  for (; i < n; ++i) out[i] = bf16_value(bf16_round(x[i]));
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
