// The AVX-512 traits plus the native BF16 dot product (AVX512_BF16 vdpbf16ps) and the FP8
// widening by byte tables (AVX512_VBMI vpermi2b). Included only by simd/avx512bf16.cc.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/simd/traits_avx512.h"

namespace dsv3::kernels::avx512bf16 {
// The fp32 kernels are the AVX-512 ones. (Both ISA files compile avx512::V's and ::B's
// inline members; either copy is fine, as both only run on CPUs with AVX-512 F/BW/VL/DQ.)
using V = avx512::V;

// The e4m3 -> BF16 byte tables' contents (high and low byte of each magnitude's BF16
// value), built by the compiler so that loading them is four loads.
struct Fp8Bytes {
  alignas(64) uint8_t hi[128];
  alignas(64) uint8_t lo[128];
  constexpr Fp8Bytes() : hi(), lo() {
    for (int m = 0; m < 128; ++m) {
      hi[m] = uint8_t(e4m3_magnitude_bf16(m) >> 8);
      lo[m] = uint8_t(e4m3_magnitude_bf16(m));
    }
  }
};
constexpr Fp8Bytes kFp8Bytes{};

// The emulated tier's accumulator and lane tree, with vdpbf16ps for the steps.
struct B : avx512::B {
  static constexpr int kTok = 6;  // 4 rows x 6 tokens = 24 accumulators of 32 registers
  static Acc dp(Acc acc, __m512i a, __m512i b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
  static Acc dp(Acc acc, const uint16_t* a, const uint16_t* b) {
    return dp(acc, _mm512_loadu_si512(a), _mm512_loadu_si512(b));
  }

  // The e4m3 -> BF16 byte tables: high and low byte of the BF16 value for each magnitude
  // (the sign bit is ORed in afterwards), 128 entries each as two registers.
  struct Fp8Tables {
    __m512i hi0, hi1, lo0, lo1;
  };
  static Fp8Tables fp8_tables() {
    return {_mm512_load_si512(kFp8Bytes.hi), _mm512_load_si512(kFp8Bytes.hi + 64), _mm512_load_si512(kFp8Bytes.lo),
            _mm512_load_si512(kFp8Bytes.lo + 64)};
  }
  // 64 e4m3 bytes (bytes past `valid` read as zero) to 64 BF16 values in kernel order (bf16.h):
  // a holds elements 0-7, 16-23, 32-39, 48-55 and b the rest.
  static void widen_fp8(const Fp8Tables& t, const uint8_t* p, int64_t valid, __m512i& a, __m512i& b) {
    const __m512i x = valid >= 64 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8((1ull << valid) - 1, p);
    const __m512i h = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(t.hi0, x, t.hi1), x,
                                                _mm512_set1_epi8(char(0x80)), 0xF8);  // table | sign
    const __m512i l = _mm512_permutex2var_epi8(t.lo0, x, t.lo1);
    a = _mm512_unpacklo_epi8(l, h);
    b = _mm512_unpackhi_epi8(l, h);
  }
};
}  // namespace dsv3::kernels::avx512bf16
