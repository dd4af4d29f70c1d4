// The training GEMM with BF16 inputs (kernels/gemm.h: gemm_bf16), native tier only: operand
// packing that rounds fp32 to BF16, and the vdpbf16ps register tile. The other tiers leave
// the entries empty and gemm_bf16 runs gemm<float> on rounded copies, which gives the same
// bits. Include only from the ISA translation units.
//
// Why the bits agree: a packed dword holds the BF16 pair (k, k+1) with element k in the HIGH
// half. vdpbf16ps adds the high half's product first, then the low half's, each add rounded
// (bf16.h, checked on this CPU at start-up), and a product of two BF16 values is exact in
// fp32 (above FLT_MIN: the instruction flushes smaller results to zero, FMAs do not). So
// each output accumulates its products in k order with one rounding per add, which is what
// gemm<float>'s FMA tile does, and both cut K into the same kGemmKc blocks.
#pragma once

#include <cstdint>

#include "kernels/simd/quant-inl.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

#if defined(__AVX512BF16__)

// 16 fp32 values to BF16 (as bf16_round), zero-extended into the 16 dword lanes.
inline __m512i gemm_bf16_widen16(__m512 v) { return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v)); }

inline __mmask16 gemm_bf16_first(int64_t k) {
  return k >= 16 ? __mmask16(0xFFFF) : k <= 0 ? __mmask16(0) : __mmask16((1u << k) - 1);
}

// 16 consecutive source values (masked lanes 0): fp32, or e4m3 codes as one byte each (the
// FP8 GEMM's operand kept as bytes), widened exactly, so both sources pack the same pairs.
inline __m512 gemm_bf16_load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 gemm_bf16_load16(const uint8_t* p, __mmask16 m) {
  return e4m3_widen16(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

// r[i][j] -> r[j][i] for 16 x 16 dwords: 32-bit, then 64-bit interleaves within 128-bit
// blocks, then two rounds of block shuffles.
inline void gemm_bf16_transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // u[g + c]: rows g..g+3, columns c, c+4, c+8, c+12 by block
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88),
                  w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[c + 8] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
    r[c + 4] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[c + 12] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
  }
}

// The pack of an operand whose indices are rows of contiguous k (s_k == 1: a row-major A, a
// transposed B): 32 k of 16 rows rounded at once (vcvtne2ps2bf16 pairs k, k + 1 in a dword;
// a rotate puts k in the high half), then transposed to 16 pairs of 16 rows. (Gathering the
// pairs instead cost about 6 cycles per element here.)
template <class T>
inline void gemm_bf16_pack_rows(const T* src, int64_t s_idx, int64_t K, int n, int width, uint32_t* dst) {
  const int64_t P = (K + 1) / 2;
  for (int v = 0; 16 * v < width; ++v) {
    const __mmask16 store = gemm_bf16_first(width - 16 * v);
    const int rows = n - 16 * v;
    for (int64_t p0 = 0; p0 < P; p0 += 16) {
      const int64_t k0 = 2 * p0;
      const __mmask16 m0 = gemm_bf16_first(K - k0), m1 = gemm_bf16_first(K - k0 - 16);
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        if (i < rows) {
          const T* s = src + int64_t(16 * v + i) * s_idx + k0;
          const __m512bh b = _mm512_cvtne2ps_pbh(gemm_bf16_load16(s + 16, m1), gemm_bf16_load16(s, m0));
          r[i] = _mm512_rol_epi32((__m512i)b, 16);
        } else {
          r[i] = _mm512_setzero_si512();
        }
      }
      gemm_bf16_transpose16(r);
      const int64_t np = P - p0 < 16 ? P - p0 : 16;
      for (int64_t q = 0; q < np; ++q) _mm512_mask_storeu_epi32(dst + (p0 + q) * width + 16 * v, store, r[q]);
    }
  }
}

// Packs indices [0, n) into rows of `width` dwords (width <= 32; indices n .. width - 1 are
// zero): dst[p][width] for pairs p < ceil(K / 2), element (i, k) at src[i * s_idx + k * s_k].
// One of the strides is 1 (gemm.cc's operands): s_idx == 1 reads the two rows k and k + 1
// of a pair as they lie, s_k == 1 takes gemm_bf16_pack_rows.
template <class T>
inline void gemm_bf16_pack(const T* src, int64_t s_idx, int64_t s_k, int64_t K, int n, int width,
                           uint32_t* dst) {
  if (s_idx != 1) return gemm_bf16_pack_rows(src, s_idx, K, n, width, dst);
  const int64_t P = (K + 1) / 2;
  for (int v = 0; 16 * v < width; ++v) {
    const __mmask16 load = gemm_bf16_first(n - 16 * v), store = gemm_bf16_first(width - 16 * v);
    const T* base = src + 16 * v;
    for (int64_t p = 0; p < P; ++p) {
      const T* row = base + 2 * p * s_k;
      const __m512 hi = gemm_bf16_load16(row, load);
      const __m512 lo = 2 * p + 1 < K ? gemm_bf16_load16(row + s_k, load) : _mm512_setzero_ps();
      const __m512i pair = _mm512_or_si512(_mm512_slli_epi32(gemm_bf16_widen16(hi), 16), gemm_bf16_widen16(lo));
      _mm512_mask_storeu_epi32(dst + p * width + 16 * v, store, pair);
    }
  }
}

// sums[r][0..32) = the products of `pairs` packed pairs, from zero. The accumulators are
// indexed by constants only, so they stay in registers.
inline void gemm_bf16_block(int64_t pairs, const uint32_t* ap, const uint32_t* bp, float (*sums)[32]) {
  constexpr int kMr = kGemmBf16Mr;
  __m512 acc[kMr][2];
  for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 16);
    for (int r = 0; r < kMr; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(ap[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
    }
    ap += kMr;
    bp += 32;
  }
  for (int r = 0; r < kMr; ++r) {
    _mm512_store_ps(sums[r], acc[r][0]);
    _mm512_store_ps(sums[r] + 16, acc[r][1]);
  }
}

// C[kGemmBf16Mr, 32] (add ? C : 0) + Apack[P][kGemmBf16Mr] * Bpack[P][32], in blocks of
// `block` pairs: each block's sums start from zero and are added to C when it ends, times
// (sa[row] then sb[col]) of the block when sa is given (sa [blocks][kGemmBf16Mr], sb
// [blocks][32]: the FP8 GEMM's scales). Rows >= m and columns >= n are not stored (the
// packs are zero there).
inline void gemm_bf16_tile(int64_t P, int64_t block, const uint32_t* ap, const uint32_t* bp, const float* sa,
                           const float* sb, float* c, int64_t ldc, int m, int n, bool add) {
  constexpr int kMr = kGemmBf16Mr;
  // C's tile is read (or written) only after a block's products: fetch it meanwhile.
  for (int r = 0; r < m; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
  }
  alignas(64) float sums[kMr][32];
  for (int64_t p0 = 0; p0 < P; p0 += block) {
    gemm_bf16_block((p0 + block < P ? p0 + block : P) - p0, ap + p0 * kMr, bp + p0 * 32, sums);
    // C + the block, or 0 + the block for the first one when !add (-0 included, as
    // gemm_tile); times the block's scales first when there are any.
    const bool load = add || p0 > 0;
    const float* sbb = sa ? sb + (p0 / block) * 32 : nullptr;
    for (int r = 0; r < m; ++r) {
      float* cr = c + r * ldc;
      __m512 v0 = _mm512_load_ps(sums[r]), v1 = _mm512_load_ps(sums[r] + 16);
      if (sa) {
        const __m512 ar = _mm512_set1_ps(sa[(p0 / block) * kMr + r]);
        v0 = _mm512_mul_ps(_mm512_mul_ps(v0, ar), _mm512_loadu_ps(sbb));
        v1 = _mm512_mul_ps(_mm512_mul_ps(v1, ar), _mm512_loadu_ps(sbb + 16));
      }
      if (n == 32) {
        _mm512_storeu_ps(cr, _mm512_add_ps(load ? _mm512_loadu_ps(cr) : _mm512_setzero_ps(), v0));
        _mm512_storeu_ps(cr + 16, _mm512_add_ps(load ? _mm512_loadu_ps(cr + 16) : _mm512_setzero_ps(), v1));
      } else {
        _mm512_store_ps(sums[r], v0);
        _mm512_store_ps(sums[r] + 16, v1);
        for (int j = 0; j < n; ++j) cr[j] = (load ? cr[j] : 0.0f) + sums[r][j];
      }
    }
  }
}

constexpr GemmBf16PackFn kGemmBf16Pack = gemm_bf16_pack<float>;
constexpr GemmBf16PackE4m3Fn kGemmBf16PackE4m3 = gemm_bf16_pack<uint8_t>;
constexpr GemmBf16TileFn kGemmBf16Tile = gemm_bf16_tile;
#else
constexpr GemmBf16PackFn kGemmBf16Pack = nullptr;
constexpr GemmBf16PackE4m3Fn kGemmBf16PackE4m3 = nullptr;
constexpr GemmBf16TileFn kGemmBf16Tile = nullptr;
#endif

}  // namespace dsv3::kernels::DSV3_SIMD_NS
