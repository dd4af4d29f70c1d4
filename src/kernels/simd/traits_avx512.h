// The vector traits every fast kernel is written over, for AVX-512 (F, BW, VL, DQ) + F16C: load, store,
// FMA, horizontal sum, and the widening of stored weights (BF16, F16, FP8 e4m3) to fp32.
// Included only by simd/avx512.cc, which is compiled with this ISA's flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace dsv3::kernels::avx512 {
struct V {
  using F = __m512;
  static constexpr int N = 16;
  static constexpr int kTok = 6;  // 4 rows x 6 tokens = 24 accumulators of 32 registers
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  // For exp (simd/latent_bf16-inl.h): max (b where a is NaN), round to nearest even, and 2^n
  // for integral n in [-126, 127].
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F round(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static float sum(F v) { return _mm512_reduce_add_ps(v); }
  static F load_bf16(const uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static F load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  // e4m3 sign|exp|mant placed into an f16's sign|low exp bits|high mant bits: the f16 value
  // is the e4m3 value times 2^-8 (normals and subnormals alike; e4m3 has no inf, NaN unused).
  // Sign-extending the byte and shifting by 7 leaves the sign in bits 15 and 14; clearing
  // bit 14 finishes it in three integer operations.
  static F load_e4m3(const uint8_t* p) {
    const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm512_cvtph_ps(_mm256_and_si256(_mm256_slli_epi16(b, 7), _mm256_set1_epi16(short(0xBFFF))));
  }
  // Two vectors' worth (2N bytes) with the integer steps done once at full width: the same
  // values as two load_e4m3 calls in fewer instructions.
  static void load_e4m3_pair(const uint8_t* p, F& lo, F& hi) {
    const __m512i b = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i h = _mm512_and_si512(_mm512_slli_epi16(b, 7), _mm512_set1_epi16(short(0xBFFF)));
    lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
  }
};

// BF16 dot-product steps (bf16.h's order) emulated with fp32 FMAs, for CPUs without
// AVX512_BF16: a BF16 pair in a 32-bit lane widens by a mask (odd element) and a shift (even
// element), and since the product of two BF16 values is exact in fp32, fma(a, b, acc) rounds
// exactly as vdpbf16ps's add does. Operands must already have subnormals flushed.
struct B {
  static constexpr int kTok = 3;  // register tile: 4 rows x 3 tokens
  using Acc = __m512;
  static Acc zero() { return _mm512_setzero_ps(); }
  static Acc dp(Acc acc, const uint16_t* a, const uint16_t* b) {
    const __m512i va = _mm512_loadu_si512(a), vb = _mm512_loadu_si512(b);
    const __m512i hi = _mm512_set1_epi32(int(0xFFFF0000u));
    acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(va, hi)), _mm512_castsi512_ps(_mm512_and_si512(vb, hi)),
                          acc);
    return _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(va, 16)),
                           _mm512_castsi512_ps(_mm512_slli_epi32(vb, 16)), acc);
  }
  // The lanes summed as the tree i += 8, 4, 2, 1.
  static float reduce(Acc a) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};
}  // namespace dsv3::kernels::avx512
