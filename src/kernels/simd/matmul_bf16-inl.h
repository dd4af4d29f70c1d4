// The BF16 matrix products (`--numerics bf16`) against stored weights, written once over the
// traits V (fp32 vectors) and B (BF16 dot-product steps) of the including translation unit:
// simd/avx512bf16.cc runs vdpbf16ps, simd/avx512.cc and simd/avx2.cc emulate it with fp32
// FMAs. All give bf16.h's results bit for bit. Include only from those files.
//
// Scheme: a chunk of up to kTokChunk tokens is rounded to BF16 once ([tn][K64], zero padded,
// FP8: times the row block's scales and in kernel order); then either
//  - (native, BF16/FP8 weights, few tokens) the micro-kernel reads the stored rows in place,
//    as kRows sequential streams, widening FP8 by byte tables on the way;
//  - or kRows rows at a time are widened into a BF16 panel and a register tile of
//    kRows x B::kTok (row, token) dot products runs over it.
// Both paths feed every output the same steps in the same order.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

constexpr int kRowsB = kSimdPanelRows;
constexpr int kTokChunkB = kSimdTokChunk;
// Up to this many tokens the native kernel reads the stored weights in place.
constexpr int64_t kDirectMaxTokensB = kSimdDirectMaxTokens;


// Rounds n floats (times `mul`) to BF16 as bf16_round does.
inline void round_bf16_n(const float* x, float mul, int64_t n, uint16_t* out) {
  int64_t c = 0;
#if defined(__AVX512F__)
  const __m512 m = _mm512_set1_ps(mul);
  for (; c + 16 <= n; c += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + c), m);
#if defined(__AVX512BF16__)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), (__m256i)_mm512_cvtneps_pbh(v));
#else
    const __m512i u = _mm512_castps_si512(v);
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)),
                         _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))),
        16);
    const __m512i top = _mm512_srli_epi32(u, 16);
    r = _mm512_mask_mov_epi32(r, _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7F800000)),
                              _mm512_and_si512(top, _mm512_set1_epi32(0x8000)));
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_or_si512(top, _mm512_set1_epi32(0x40)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm512_cvtepi32_epi16(r));
#endif
  }
#endif
  for (; c < n; ++c) out[c] = bf16_round(x[c] * mul);
}

// Puts each 64-block of a natural-order BF16 row into kernel order (bf16.h).
inline void to_fp8_order(uint16_t* p, int64_t K64) {
#if defined(__AVX512BW__)
  alignas(64) uint16_t ia[32], ib[32];
  for (int q = 0; q < 32; ++q) {
    ia[q] = uint16_t(fp8_order_element(q));
    ib[q] = uint16_t(fp8_order_element(32 + q));
  }
  const __m512i va = _mm512_load_si512(ia), vb = _mm512_load_si512(ib);
  for (int64_t c = 0; c < K64; c += 64) {
    const __m512i n0 = _mm512_loadu_si512(p + c), n1 = _mm512_loadu_si512(p + c + 32);
    _mm512_storeu_si512(p + c, _mm512_permutex2var_epi16(n0, va, n1));
    _mm512_storeu_si512(p + c + 32, _mm512_permutex2var_epi16(n0, vb, n1));
  }
#else
  uint16_t tmp[64];
  for (int64_t c = 0; c < K64; c += 64) {
    for (int q = 0; q < 64; ++q) tmp[q] = p[c + fp8_order_element(q)];
    for (int q = 0; q < 64; ++q) p[c + q] = tmp[q];
  }
#endif
}

// xb[t] = BF16(x[t] * scales) for tn tokens, zero padded to K64; srow (FP8 only): the row
// block's scales, and the result in kernel order.
inline void prepare_x_bf16(const WeightMatrix& w, const float* srow, const float* x, int64_t x_stride, int64_t tn,
                           uint16_t* xb, int64_t K64) {
  const int64_t K = w.cols;
  for (int64_t t = 0; t < tn; ++t) {
    const float* xt = x + t * x_stride;
    uint16_t* o = xb + t * K64;
    if (!srow) {
      round_bf16_n(xt, 1.0f, K, o);
    } else {
      for (int64_t c0 = 0, b = 0; c0 < K; c0 += w.block_cols, ++b)
        round_bf16_n(xt + c0, srow[b], (c0 + w.block_cols < K ? w.block_cols : K - c0), o + c0);
    }
    for (int64_t c = K; c < K64; ++c) o[c] = 0;
    if (srow) to_fp8_order(o, K64);
  }
}

// FP8 e4m3 byte -> BF16 bits (sign included), for the emulated tiers' panel.
struct Fp8Bf16Table {
  uint16_t v[256];
  constexpr Fp8Bf16Table() : v() {
    for (int b = 0; b < 256; ++b) v[b] = uint16_t(e4m3_magnitude_bf16(b & 0x7F) | ((b & 0x80) << 8));
  }
};
constexpr Fp8Bf16Table kFp8Bf16{};

// FP8 row r of w as BF16 in kernel order: K64 values (any multiple of 64 from w.cols up),
// zero padded.
inline void panel_row_fp8(const WeightMatrix& w, int64_t r, uint16_t* out, int64_t K64) {
  const int64_t K = w.cols;
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + size_t(r) * size_t(K);
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
  const B::Fp8Tables t = B::fp8_tables();
  for (int64_t c = 0; c < K64; c += 64) {
    __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
    if (c < K) B::widen_fp8(t, p + c, K - c, a, b);
    _mm512_storeu_si512(out + c, a);
    _mm512_storeu_si512(out + c + 32, b);
  }
#else
  for (int64_t c = 0; c < K64; c += 64)
    for (int q = 0; q < 64; ++q) {
      const int64_t e = c + fp8_order_element(q);
      out[c + q] = e < K ? kFp8Bf16.v[p[e]] : 0;
    }
#endif
}

// Row r of w as the BF16 sequence the products take (bf16.h): K64 values, zero padded,
// subnormals flushed. frow: scratch of w.cols floats.
inline void panel_row_bf16(const WeightMatrix& w, int64_t r, uint16_t* out, int64_t K64, float* frow) {
  const int64_t K = w.cols;
  switch (w.dtype) {
    case io::DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + size_t(r) * size_t(K);
      int64_t c = 0;
#if defined(__AVX512BW__)
      for (; c + 32 <= K; c += 32) {
        const __m512i v = _mm512_loadu_si512(p + c);
        _mm512_storeu_si512(out + c, _mm512_maskz_mov_epi16(_mm512_test_epi16_mask(v, _mm512_set1_epi16(0x7F80)), v));
      }
#endif
      for (; c < K; ++c) out[c] = (p[c] & 0x7F80u) ? p[c] : uint16_t(p[c] & 0x8000u);
      for (; c < K64; ++c) out[c] = 0;
      return;
    }
    case io::DType::F8_E4M3: return panel_row_fp8(w, r, out, K64);
    default:
      decode_row_simd(w, r, frow);
      round_bf16_n(frow, 1.0f, K, out);
      for (int64_t c = K; c < K64; ++c) out[c] = 0;
      return;
  }
}

// y[t][i] for R panel rows and TT tokens: one register tile over the whole sequence.
template <int R, int TT>
inline void bf16_tile(const uint16_t* panel, int64_t K64, const uint16_t* xb, float* y, int64_t y_stride) {
  typename B::Acc acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = B::zero();
  for (int64_t k = 0; k < K64; k += kBf16Chunk)
    for (int t = 0; t < TT; ++t)
      for (int i = 0; i < R; ++i) acc[i][t] = B::dp(acc[i][t], panel + i * K64 + k, xb + t * K64 + k);
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) y[t * y_stride + i] = B::reduce(acc[i][t]);
}

template <int R>
inline void bf16_token_tiles(const uint16_t* panel, int64_t K64, const uint16_t* xb, int64_t T, float* y,
                             int64_t y_stride) {
  constexpr int TT = B::kTok;
  int64_t t = 0;
  for (; t + TT <= T; t += TT) bf16_tile<R, TT>(panel, K64, xb + t * K64, y + t * y_stride, y_stride);
  const uint16_t* xt = xb + t * K64;
  float* yt = y + t * y_stride;
  switch (T - t) {  // remainder tiles (kTok <= 6)
    case 0: break;
    case 1: bf16_tile<R, 1>(panel, K64, xt, yt, y_stride); break;
    case 2: bf16_tile<R, 2>(panel, K64, xt, yt, y_stride); break;
    case 3: bf16_tile<R, 3>(panel, K64, xt, yt, y_stride); break;
    case 4: bf16_tile<R, 4>(panel, K64, xt, yt, y_stride); break;
    case 5: bf16_tile<R, 5>(panel, K64, xt, yt, y_stride); break;
  }
}

// Rows [a, b) through the panel, kRowsB at a time; y indexed from row r0.
inline void bf16_panel_rows(const WeightMatrix& w, int64_t a, int64_t b, int64_t r0, const uint16_t* xb, int64_t T,
                            float* y, int64_t y_stride, uint16_t* panel, float* frow) {
  const int64_t K64 = bf16_padded(w.cols);
  int64_t r = a;
  for (; r + kRowsB <= b; r += kRowsB) {
    for (int i = 0; i < kRowsB; ++i) panel_row_bf16(w, r + i, panel + i * K64, K64, frow);
    bf16_token_tiles<kRowsB>(panel, K64, xb, T, y + (r - r0), y_stride);
  }
  for (; r < b; ++r) {
    panel_row_bf16(w, r, panel, K64, frow);
    bf16_token_tiles<1>(panel, K64, xb, T, y + (r - r0), y_stride);
  }
}

#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
// The stored rows read in place: R rows, each a sequential stream (see matmul-inl.h's
// micro_kernel_direct for why the rows are far apart), TT tokens. y indexed by absolute row.
template <bool kFp8, int R, int TT>
inline void bf16_direct(const WeightMatrix& w, const int64_t* row, const uint16_t* xb, int64_t K64, float* y,
                        int64_t y_stride, const B::Fp8Tables& tables) {
  const int64_t K = w.cols;
  const int64_t row_bytes = kFp8 ? K : 2 * K;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = static_cast<const uint8_t*>(w.data) + size_t(row[i]) * size_t(row_bytes);
  constexpr int64_t ahead = 1024;  // bytes, as in the fp32 kernel
  __m512 acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K64; k += 64) {
    const int64_t valid = K - k;
    __m512i a[R], b[R];
    for (int i = 0; i < R; ++i) {
      if (kFp8) {
        __builtin_prefetch(rows[i] + ahead + k, 0, 3);
        B::widen_fp8(tables, rows[i] + k, valid, a[i], b[i]);
      } else {
        const uint8_t* p = rows[i] + 2 * k;
        __builtin_prefetch(p + ahead, 0, 3);
        __builtin_prefetch(p + ahead + 64, 0, 3);
        if (valid >= 64) {
          a[i] = _mm512_loadu_si512(p);
          b[i] = _mm512_loadu_si512(p + 64);
        } else {
          const uint64_t m = (1ull << valid) - 1;  // valid < 64
          a[i] = _mm512_maskz_loadu_epi16(__mmask32(m), p);
          b[i] = _mm512_maskz_loadu_epi16(__mmask32(m >> 32), p + 64);
        }
      }
    }
    for (int t = 0; t < TT; ++t) {
      const __m512i xa = _mm512_loadu_si512(xb + t * K64 + k), xc = _mm512_loadu_si512(xb + t * K64 + k + 32);
      for (int i = 0; i < R; ++i) acc[i][t] = B::dp(B::dp(acc[i][t], a[i], xa), b[i], xc);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) y[t * y_stride + row[i]] = B::reduce(acc[i][t]);
}

// Register tiles of 4 rows x 4 tokens (16 accumulators + 8 weight vectors + the tables), or
// of 2 rows x 8 tokens while 8 tokens are left: there each widened weight vector serves 8
// tokens instead of 4, which halves the FP8 widening and the weight reads per product of a
// batched decode step. Every output gets the same steps in the same order either way.
template <bool kFp8, int R>
inline void bf16_direct_tiles(const WeightMatrix& w, const int64_t* row, const uint16_t* xb, int64_t K64, int64_t T,
                              float* y, int64_t y_stride, const B::Fp8Tables& tables) {
  int64_t t = 0;
  for (; t + 8 <= T; t += 8) {
    for (int i = 0; i + 2 <= R; i += 2)
      bf16_direct<kFp8, 2, 8>(w, row + i, xb + t * K64, K64, y + t * y_stride, y_stride, tables);
    if (R % 2) bf16_direct<kFp8, 1, 8>(w, row + R - 1, xb + t * K64, K64, y + t * y_stride, y_stride, tables);
  }
  for (; t + 4 <= T; t += 4) bf16_direct<kFp8, R, 4>(w, row, xb + t * K64, K64, y + t * y_stride, y_stride, tables);
  const uint16_t* xt = xb + t * K64;
  float* yt = y + t * y_stride;
  switch (T - t) {
    case 0: break;
    case 1: bf16_direct<kFp8, R, 1>(w, row, xt, K64, yt, y_stride, tables); break;
    case 2: bf16_direct<kFp8, R, 2>(w, row, xt, K64, yt, y_stride, tables); break;
    case 3: bf16_direct<kFp8, R, 3>(w, row, xt, K64, yt, y_stride, tables); break;
  }
}

// Rows [a, b) as kRowsB sequential streams; y indexed by absolute row.
template <bool kFp8>
inline void bf16_row_streams(const WeightMatrix& w, int64_t a, int64_t b, const uint16_t* xb, int64_t T, float* y,
                             int64_t y_stride, const B::Fp8Tables& tables) {
  const int64_t K64 = bf16_padded(w.cols);
  const int64_t part = (b - a) / kRowsB;
  int64_t row[kRowsB];
  for (int64_t j = 0; j < part; ++j) {
    for (int i = 0; i < kRowsB; ++i) row[i] = a + i * part + j;
    bf16_direct_tiles<kFp8, kRowsB>(w, row, xb, K64, T, y, y_stride, tables);
  }
  for (int64_t r = a + kRowsB * part; r < b; ++r) bf16_direct_tiles<kFp8, 1>(w, &r, xb, K64, T, y, y_stride, tables);
}
#endif

// Rows [a, b) against tn prepared tokens, by whichever path suits; y indexed from row r0.
inline void bf16_rows_prepared(const WeightMatrix& w, int64_t a, int64_t b, int64_t r0, const uint16_t* xb, int64_t tn,
                               float* y, int64_t y_stride, uint16_t* panel, float* frow) {
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
  if (tn <= kDirectMaxTokensB && (w.dtype == io::DType::BF16 || w.dtype == io::DType::F8_E4M3)) {
    const B::Fp8Tables tables = B::fp8_tables();
    if (w.dtype == io::DType::BF16) return bf16_row_streams<false>(w, a, b, xb, tn, y - r0, y_stride, tables);
    return bf16_row_streams<true>(w, a, b, xb, tn, y - r0, y_stride, tables);
  }
#endif
  bf16_panel_rows(w, a, b, r0, xb, tn, y, y_stride, panel, frow);
}

// scratch: matmul_scratch(w) floats (the token chunk, the panel, one fp32 row).
inline void rows_bf16(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                      float* y, int64_t y_stride, float* scratch) {
  const int64_t K64 = bf16_padded(w.cols);
  uint16_t* xb = reinterpret_cast<uint16_t*>(scratch);
  uint16_t* panel = xb + kTokChunkB * K64;
  float* frow = reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(panel + kRowsB * K64 + 15) & ~uintptr_t(15));
  const bool fp8 = w.dtype == io::DType::F8_E4M3;
  for (int64_t tc = 0; tc < T; tc += kTokChunkB) {
    const int64_t tn = T - tc < kTokChunkB ? T - tc : kTokChunkB;
    const float* xc = x + tc * x_stride;
    float* yc = y + tc * y_stride;
    if (!fp8) {
      prepare_x_bf16(w, nullptr, xc, x_stride, tn, xb, K64);
      bf16_rows_prepared(w, r0, r1, r0, xb, tn, yc, y_stride, panel, frow);
      continue;
    }
    for (int64_t a = r0, b; a < r1; a = b) {  // one FP8 row block (one set of scales) at a time
      b = row_block_end(w, a, r1);
      prepare_x_bf16(w, w.scale + (a / w.block_rows) * w.scale_cols, xc, x_stride, tn, xb, K64);
      bf16_rows_prepared(w, a, b, r0, xb, tn, yc, y_stride, panel, frow);
    }
  }
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
