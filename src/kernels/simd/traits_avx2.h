// The vector traits every fast kernel is written over, for AVX2 + FMA + F16C: load, store,
// FMA, horizontal sum, and the widening of stored weights (BF16, F16, FP8 e4m3) to fp32.
// Included only by simd/avx2.cc, which is compiled with this ISA's flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace dsv3::kernels::avx2 {
struct V {
  using F = __m256;
  static constexpr int N = 8;
  static constexpr int kTok = 2;  // 4 rows x 2 tokens = 8 accumulators of 16 registers
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  // For exp (simd/latent_bf16-inl.h): max (b where a is NaN), round to nearest even, and 2^n
  // for integral n in [-126, 127].
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F round(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static float sum(F v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
  static F load_bf16(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static F load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  // See the AVX-512 version: the f16 value is the e4m3 value times 2^-8.
  static F load_e4m3(const uint8_t* p) {
    const __m128i b = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return _mm256_cvtph_ps(_mm_and_si128(_mm_slli_epi16(b, 7), _mm_set1_epi16(short(0xBFFF))));
  }
  static void load_e4m3_pair(const uint8_t* p, F& lo, F& hi) {
    const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i h = _mm256_and_si256(_mm256_slli_epi16(b, 7), _mm256_set1_epi16(short(0xBFFF)));
    lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  }
};

// BF16 dot-product steps emulated with fp32 FMAs (see the AVX-512 version): the 16 lanes
// of bf16.h's order are two registers, elements 0-15 of a chunk in lo, 16-31 in hi.
struct B {
  static constexpr int kTok = 1;
  struct Acc {
    __m256 lo, hi;
  };
  static Acc zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static __m256 step(__m256 acc, __m256i va, __m256i vb) {
    const __m256i hi = _mm256_set1_epi32(int(0xFFFF0000u));
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(va, hi)), _mm256_castsi256_ps(_mm256_and_si256(vb, hi)),
                          acc);
    return _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(va, 16)),
                           _mm256_castsi256_ps(_mm256_slli_epi32(vb, 16)), acc);
  }
  static Acc dp(Acc acc, const uint16_t* a, const uint16_t* b) {
    auto ld = [](const uint16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
    return {step(acc.lo, ld(a), ld(b)), step(acc.hi, ld(a + 16), ld(b + 16))};
  }
  static float reduce(Acc a) {
    const __m256 s8 = _mm256_add_ps(a.lo, a.hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};
}  // namespace dsv3::kernels::avx2
