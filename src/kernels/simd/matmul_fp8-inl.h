// The FP8 products of `--numerics fp8` (matmul.h: matmul_rows_fp8_ref is their definition),
// native tier only (vdpbf16ps and the byte-table FP8 widening of matmul_bf16-inl.h); the
// other tiers leave the entry empty and the portable twin runs. Include only from the ISA
// translation units.
//
// Each token's 128-channel blocks are quantized to e4m3 once per call (scale = block amax /
// 448), laid out in kernel order as BF16 (exact); the stored e4m3 weights are widened as in
// bf16 numerics; each block's BF16 steps go into a block accumulator, which is folded into
// the running sums with one FMA by (activation scale x weight block scale).
#pragma once

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

using RowsFp8Fn = void (*)(const WeightMatrix&, int64_t, int64_t, const float*, int64_t, int64_t, float*, int64_t,
                           float*);

#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)

// e4m3_round_bf16 on 16 values (NaN inputs excepted): the nearest e4m3 value as BF16 bits.
inline __m256i e4m3_round_bf16_16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i sign = _mm512_and_si512(u, _mm512_set1_epi32(int(0x80000000u)));
  const __m512i au = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
  const __m512 a = _mm512_castsi512_ps(au);
  __m512i q = _mm512_add_epi32(au, _mm512_set1_epi32(0x7FFFF));
  q = _mm512_add_epi32(q, _mm512_and_si512(_mm512_srli_epi32(au, 20), _mm512_set1_epi32(1)));
  q = _mm512_and_si512(q, _mm512_set1_epi32(int(0xFFF00000u)));
  const __m512 normal = _mm512_min_ps(_mm512_castsi512_ps(q), _mm512_set1_ps(448.0f));
  const __m512 sub = _mm512_mul_ps(
      _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(512.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
      _mm512_set1_ps(1.0f / 512.0f));
  const __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.015625f), _CMP_GE_OQ), sub, normal);
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_or_si512(_mm512_castps_si512(r), sign), 16));
}

// act_quant for tn tokens: xq[t] = e4m3(x / scale) per block of bc channels as BF16 in
// kernel order (n = blocks x bc values, zero padded), sx[t * nb + b] = the block's scale.
inline void quantize_x_fp8(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t tn, uint16_t* xq,
                           int64_t n, float* sx) {
  const int64_t K = w.cols, bc = w.block_cols, nb = n / bc;
  for (int64_t t = 0; t < tn; ++t) {
    const float* xt = x + t * x_stride;
    uint16_t* o = xq + t * n;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t c0 = b * bc, c1 = c0 + bc < K ? c0 + bc : K;
      __m512 m = _mm512_setzero_ps();
      int64_t c = c0;
      for (; c + 16 <= c1; c += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xt + c)));
      float amax = _mm512_reduce_max_ps(m);
      for (; c < c1; ++c) amax = amax > __builtin_fabsf(xt[c]) ? amax : __builtin_fabsf(xt[c]);
      const float s = fp8_act_scale(amax, w.ue8m0);
      sx[t * nb + b] = s;
      const __m512 sv = _mm512_set1_ps(s);
      for (c = c0; c + 16 <= c1; c += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + c), e4m3_round_bf16_16(_mm512_div_ps(_mm512_loadu_ps(xt + c), sv)));
      for (; c < c1; ++c) o[c] = e4m3_round_bf16(xt[c] / s);
    }
    for (int64_t c = K; c < n; ++c) o[c] = 0;
    to_fp8_order(o, n);
  }
}

// At the end of a scale block: acc += blk x (activation scale x weight scale), one FMA per
// accumulator, and blk starts again. comb: the block's combined scale of token 0; tokens are
// nb apart.
template <int R, int TT>
inline void fold_block(__m512 (&acc)[R][TT], __m512 (&blk)[R][TT], const float* comb, int64_t nb) {
  for (int t = 0; t < TT; ++t) {
    const __m512 s = _mm512_set1_ps(comb[t * nb]);
    for (int i = 0; i < R; ++i) {
      acc[i][t] = _mm512_fmadd_ps(blk[i][t], s, acc[i][t]);
      blk[i][t] = _mm512_setzero_ps();
    }
  }
}

// R stored rows (far apart, sequential streams) against TT quantized tokens; comb[t * nb + b]:
// activation scale x weight block scale. y indexed by absolute row.
template <int R, int TT>
inline void fp8_direct(const WeightMatrix& w, const int64_t* row, const uint16_t* xq, int64_t n, const float* comb,
                       float* y, int64_t y_stride, const B::Fp8Tables& tables) {
  const int64_t K = w.cols, bc = w.block_cols, nb = n / bc;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = static_cast<const uint8_t*>(w.data) + size_t(row[i]) * size_t(K);
  __m512 acc[R][TT], blk[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = blk[i][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < n; k += 64) {
    const int64_t valid = K - k;
    __m512i a[R], b[R];
    for (int i = 0; i < R; ++i) {
      __builtin_prefetch(rows[i] + 1024 + k, 0, 3);
      if (valid > 0) {
        B::widen_fp8(tables, rows[i] + k, valid, a[i], b[i]);
      } else {
        a[i] = b[i] = _mm512_setzero_si512();
      }
    }
    for (int t = 0; t < TT; ++t) {
      const __m512i xa = _mm512_loadu_si512(xq + t * n + k), xc = _mm512_loadu_si512(xq + t * n + k + 32);
      for (int i = 0; i < R; ++i) blk[i][t] = B::dp(B::dp(blk[i][t], a[i], xa), b[i], xc);
    }
    if ((k + 64) % bc == 0) fold_block<R, TT>(acc, blk, comb + k / bc, nb);
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) y[t * y_stride + row[i]] = B::reduce(acc[i][t]);
}

template <int R>
inline void fp8_direct_tiles(const WeightMatrix& w, const int64_t* row, const uint16_t* xq, int64_t n,
                             const float* comb, int64_t T, float* y, int64_t y_stride, const B::Fp8Tables& tables) {
  const int64_t nb = n / w.block_cols;
  int64_t t = 0;
  for (; t + 2 <= T; t += 2) fp8_direct<R, 2>(w, row, xq + t * n, n, comb + t * nb, y + t * y_stride, y_stride, tables);
  if (t < T) fp8_direct<R, 1>(w, row, xq + t * n, n, comb + t * nb, y + t * y_stride, y_stride, tables);
}

// Many tokens (prefill): R adjacent rows widened once into the panel [R][n] (BF16, kernel
// order), then register tiles of R rows x TT tokens over it; the same steps per output as
// fp8_direct.
template <int R, int TT>
inline void fp8_panel_tile(const uint16_t* panel, const uint16_t* xq, int64_t n, int64_t bc, const float* comb,
                           float* y, int64_t y_stride) {
  const int64_t nb = n / bc;
  __m512 acc[R][TT], blk[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = blk[i][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < n; k += 64) {
    for (int t = 0; t < TT; ++t) {
      const __m512i xa = _mm512_loadu_si512(xq + t * n + k), xc = _mm512_loadu_si512(xq + t * n + k + 32);
      for (int i = 0; i < R; ++i)
        blk[i][t] = B::dp(B::dp(blk[i][t], _mm512_loadu_si512(panel + i * n + k), xa),
                          _mm512_loadu_si512(panel + i * n + k + 32), xc);
    }
    if ((k + 64) % bc == 0) fold_block<R, TT>(acc, blk, comb + k / bc, nb);
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) y[t * y_stride + i] = B::reduce(acc[i][t]);
}

template <int R>
inline void fp8_panel_tiles(const uint16_t* panel, const uint16_t* xq, int64_t n, int64_t bc, const float* comb,
                            int64_t T, float* y, int64_t y_stride) {
  const int64_t nb = n / bc;
  int64_t t = 0;
  for (; t + 3 <= T; t += 3) fp8_panel_tile<R, 3>(panel, xq + t * n, n, bc, comb + t * nb, y + t * y_stride, y_stride);
  for (; t < T; ++t) fp8_panel_tile<R, 1>(panel, xq + t * n, n, bc, comb + t * nb, y + t * y_stride, y_stride);
}

// Rows [a, b) of one weight row block through the panel; y indexed by absolute row.
inline void fp8_panel_rows(const WeightMatrix& w, int64_t a, int64_t b, const uint16_t* xq, int64_t n,
                           const float* comb, int64_t T, float* y, int64_t y_stride, uint16_t* panel) {
  const int64_t bc = w.block_cols;
  int64_t r = a;
  for (; r + kSimdPanelRows <= b; r += kSimdPanelRows) {
    for (int i = 0; i < kSimdPanelRows; ++i) panel_row_fp8(w, r + i, panel + i * n, n);
    fp8_panel_tiles<kSimdPanelRows>(panel, xq, n, bc, comb, T, y + r, y_stride);
  }
  for (; r < b; ++r) {
    panel_row_fp8(w, r, panel, n);
    fp8_panel_tiles<1>(panel, xq, n, bc, comb, T, y + r, y_stride);
  }
}

// scratch: the quantized chunk [kSimdTokChunk][n] (BF16), its scales, the combined scales
// and the panel [kSimdPanelRows][n] (BF16).
inline void rows_fp8(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                     float* y, int64_t y_stride, float* scratch) {
  const int64_t bc = w.block_cols, nb = (w.cols + bc - 1) / bc, n = nb * bc;
  uint16_t* xq = reinterpret_cast<uint16_t*>(scratch);
  float* sx = scratch + (kSimdTokChunk * n + 1) / 2;
  float* comb = sx + kSimdTokChunk * nb;
  uint16_t* panel = reinterpret_cast<uint16_t*>(comb + kSimdTokChunk * nb);
  const B::Fp8Tables tables = B::fp8_tables();
  float* y0 = y - r0;
  for (int64_t tc = 0; tc < T; tc += kSimdTokChunk) {
    const int64_t tn = T - tc < kSimdTokChunk ? T - tc : kSimdTokChunk;
    quantize_x_fp8(w, x + tc * x_stride, x_stride, tn, xq, n, sx);
    float* yc = y0 + tc * y_stride;
    for (int64_t a = r0, b; a < r1; a = b) {  // one weight row block (one row of scales) at a time
      b = row_block_end(w, a, r1);
      const float* srow = w.scale + (a / w.block_rows) * w.scale_cols;
      for (int64_t t = 0; t < tn; ++t)
        for (int64_t k = 0; k < nb; ++k) comb[t * nb + k] = sx[t * nb + k] * srow[k];
      if (tn > kSimdDirectMaxTokens) {
        fp8_panel_rows(w, a, b, xq, n, comb, tn, yc, y_stride, panel);
        continue;
      }
      const int64_t part = (b - a) / kSimdPanelRows;
      int64_t row[kSimdPanelRows];
      for (int64_t j = 0; j < part; ++j) {
        for (int i = 0; i < kSimdPanelRows; ++i) row[i] = a + i * part + j;
        fp8_direct_tiles<kSimdPanelRows>(w, row, xq, n, comb, tn, yc, y_stride, tables);
      }
      for (int64_t r = a + kSimdPanelRows * part; r < b; ++r)
        fp8_direct_tiles<1>(w, &r, xq, n, comb, tn, yc, y_stride, tables);
    }
  }
}

constexpr RowsFp8Fn kRowsFp8 = rows_fp8;
#else
constexpr RowsFp8Fn kRowsFp8 = nullptr;
#endif

}  // namespace dsv3::kernels::DSV3_SIMD_NS
