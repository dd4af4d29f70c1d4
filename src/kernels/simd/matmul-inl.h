// The fast matrix products against stored weights, written once over the vector traits V of
// the including translation unit (simd/avx2.cc, simd/avx512.cc). Include only from those.
//
// Scheme: a tile of kRows weight rows is decoded to fp32 into a per-thread panel (BF16 by a
// shift, FP8 via e4m3 -> f16 bit placement -> f32), then a register-blocked dot-product
// micro-kernel runs kRows x kTok (row, token) pairs at once. For a few tokens (decode, or a
// decode batch) the micro-kernel reads the stored weights in place instead, tile after
// tile, while they sit in L1.
// FP8 block scales are applied to the activations, not the weights: for the rows of one
// 128-row block, x'[k] = x[k] * scale[block][k / 128] * 256 is computed once, and the
// weights enter the products as e4m3 * 2^-8 straight from the conversion. That saves a
// multiply per weight vector, which is what bounds FP8 decode on one core; a register tile
// therefore never spans two row blocks.
// Every (row, token) result is computed by the same sequence of operations whatever T or
// the tiling, so decode and prefill agree bit for bit.
//
// No standard-library templates or shared inline helpers are used in simd/*-inl.h: this
// code is built with ISA flags, and an out-of-line copy of such a function could be picked
// by the linker for generic code, which would then crash on older CPUs. Scratch memory
// comes from the caller for the same reason.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/simd/table.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

constexpr int kRows = kSimdPanelRows;  // weight rows per tile
constexpr int kTokChunk = kSimdTokChunk;  // tokens whose activations stay cache-resident per pass
// Up to this many tokens, the micro-kernel reads the stored weights in place (no panel).
constexpr int64_t kDirectMaxTokens = kSimdDirectMaxTokens;

static inline float bf16_bits_to_f32(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Decodes row r of w into out[0..cols) with vector conversions.
inline void decode_row_simd(const WeightMatrix& w, int64_t r, float* out) {
  constexpr int N = V::N;
  const int64_t cols = w.cols;
  const size_t base = size_t(r) * size_t(cols);
  switch (w.dtype) {
    case io::DType::F32: std::memcpy(out, static_cast<const float*>(w.data) + base, size_t(cols) * 4); return;
    case io::DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      int64_t c = 0;
      for (; c + N <= cols; c += N) V::store(out + c, V::load_bf16(p + c));
      for (; c < cols; ++c) out[c] = bf16_bits_to_f32(p[c]);
      return;
    }
    case io::DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      int64_t c = 0;
      for (; c + N <= cols; c += N) V::store(out + c, V::load_f16(p + c));
      for (; c < cols; ++c) out[c] = w.at(r, c);
      return;
    }
    case io::DType::F8_E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + base;
      const float* srow = w.scale + (r / w.block_rows) * w.scale_cols;
      for (int64_t c0 = 0, b = 0; c0 < cols; c0 += w.block_cols, ++b) {
        const int64_t c1 = c0 + w.block_cols < cols ? c0 + w.block_cols : cols;
        // load_e4m3 yields value * 2^-8 exactly; 256 * scale is exact too, so the product
        // rounds once, like the scalar lut[q] * scale.
        const typename V::F s = V::set1(srow[b] * 256.0f);
        int64_t c = c0;
        for (; c + N <= c1; c += N) V::store(out + c, V::mul(V::load_e4m3(p + c), s));
        for (; c < c1; ++c) out[c] = w.at(r, c);
      }
      return;
    }
    default: decode_row(w, r, out);  // the portable path raises the error
  }
}

// The end of the FP8 row block holding row a, capped at r1.
inline int64_t row_block_end(const WeightMatrix& w, int64_t a, int64_t r1) {
  const int64_t b = (a / w.block_rows + 1) * w.block_rows;
  return b < r1 ? b : r1;
}

// xs[t][k] = x[t][k] * scale[rb][k / block_cols] * 256 for T tokens: the activations the
// FP8 rows of row block rb are multiplied with (their weights taken as e4m3 * 2^-8).
inline void scale_activations(const WeightMatrix& w, int64_t rb, const float* x, int64_t x_stride, int64_t T,
                              float* xs) {
  constexpr int N = V::N;
  const int64_t K = w.cols;
  const float* srow = w.scale + rb * w.scale_cols;
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * x_stride;
    float* st = xs + t * K;
    for (int64_t c0 = 0, b = 0; c0 < K; c0 += w.block_cols, ++b) {
      const int64_t c1 = c0 + w.block_cols < K ? c0 + w.block_cols : K;
      const float f = srow[b] * 256.0f;  // exact: a power of two
      const typename V::F s = V::set1(f);
      int64_t c = c0;
      for (; c + N <= c1; c += N) V::store(st + c, V::mul(V::load(xt + c), s));
      for (; c < c1; ++c) st[c] = xt[c] * f;
    }
  }
}

// FP8 row r without its block scales, e4m3 * 2^-8 (exact), for the panel.
inline void decode_row_unscaled(const WeightMatrix& w, int64_t r, float* out) {
  constexpr int N = V::N;
  const int64_t K = w.cols;
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + size_t(r) * size_t(K);
  int64_t c = 0;
  for (; c + N <= K; c += N) V::store(out + c, V::load_e4m3(p + c));
  for (; c < K; ++c) out[c] = w.raw_at(r, c) * 0.00390625f;
}

// acc[i][t] += w[i] * x[t][k, k + N) for R weight vectors and TT tokens: one vector step of
// a register tile (the same operations in the same order for the panel and direct paths).
template <int R, int TT>
inline void fma_step(const typename V::F (&w)[R], const float* x, int64_t x_stride, int64_t k,
                     typename V::F (&acc)[R][TT]) {
  for (int t = 0; t < TT; ++t) {
    const typename V::F xv = V::load(x + t * x_stride + k);
    for (int i = 0; i < R; ++i) acc[i][t] = V::fma(w[i], xv, acc[i][t]);
  }
}

// acc[i][t] over the vector part of k, then horizontal sums plus the scalar tail.
template <int R, int TT>
inline void micro_kernel(const float* panel, int64_t K, const float* x, int64_t x_stride, float* y, int64_t y_stride) {
  constexpr int N = V::N;
  typename V::F acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = V::zero();
  const int64_t kv = K / N * N;
  for (int64_t k = 0; k < kv; k += N) {
    typename V::F wv[R];
    for (int i = 0; i < R; ++i) wv[i] = V::load(panel + i * K + k);
    fma_step<R, TT>(wv, x, x_stride, k, acc);
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) {
      float s = V::sum(acc[i][t]);
      for (int64_t k = kv; k < K; ++k) s += panel[i * K + k] * x[t * x_stride + k];
      y[t * y_stride + i] = s;
    }
}

template <int R>
inline void token_tiles(const float* panel, int64_t K, const float* x, int64_t x_stride, int64_t T, float* y,
                        int64_t y_stride) {
  constexpr int TT = V::kTok;
  int64_t t = 0;
  for (; t + TT <= T; t += TT) micro_kernel<R, TT>(panel, K, x + t * x_stride, x_stride, y + t * y_stride, y_stride);
  switch (T - t) {  // remainder tiles (kTok <= 6)
    case 0: break;
    case 1: micro_kernel<R, 1>(panel, K, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 2: micro_kernel<R, 2>(panel, K, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 3: micro_kernel<R, 3>(panel, K, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 4: micro_kernel<R, 4>(panel, K, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 5: micro_kernel<R, 5>(panel, K, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
  }
}

// Weight loaders, one per stored dtype, so the direct kernel's inner loop carries no dtype
// switch. Each yields exactly what the panel would hold (FP8 unscaled, as e4m3 * 2^-8), so
// the direct and the panel paths compute bit-identical results; load2() widens two vectors
// and tail() is the scalar element for columns past the last full vector.
// WidenEach: loaders that widen one vector at a time, with exactly decoded tails.
template <class D>
struct WidenEach {
  static void load2(const uint8_t* row, int64_t k, typename V::F& lo, typename V::F& hi) {
    lo = D::load(row, k);
    hi = D::load(row, k + V::N);
  }
  static float tail(const WeightMatrix& w, int64_t r, int64_t k) { return w.at(r, k); }
};
struct LoadF32 : WidenEach<LoadF32> {
  static constexpr int kBytes = 4;
  static typename V::F load(const uint8_t* row, int64_t k) { return V::load(reinterpret_cast<const float*>(row) + k); }
};
struct LoadBf16 : WidenEach<LoadBf16> {
  static constexpr int kBytes = 2;
  static typename V::F load(const uint8_t* row, int64_t k) {
    return V::load_bf16(reinterpret_cast<const uint16_t*>(row) + k);
  }
};
struct LoadF16 : WidenEach<LoadF16> {
  static constexpr int kBytes = 2;
  static typename V::F load(const uint8_t* row, int64_t k) {
    return V::load_f16(reinterpret_cast<const uint16_t*>(row) + k);
  }
};
struct LoadE4m3 {
  static constexpr int kBytes = 1;
  static typename V::F load(const uint8_t* row, int64_t k) { return V::load_e4m3(row + k); }
  static void load2(const uint8_t* row, int64_t k, typename V::F& lo, typename V::F& hi) {
    V::load_e4m3_pair(row + k, lo, hi);
  }
  static float tail(const WeightMatrix& w, int64_t r, int64_t k) { return w.raw_at(r, k) * 0.00390625f; }
};

// The micro-kernel reading the stored weights directly: for a handful of tokens (decode)
// a panel's store and reload would only add memory traffic. It works on R rows at once
// (independent accumulator chains), which the caller picks far apart: each of the R rows
// continues a sequential stream through memory, the access pattern the hardware prefetcher
// serves at full bandwidth (R adjacent rows read in lockstep make it jump back and forth
// between 4 KB pages, and reach about half of it).
template <class L, int R, int TT>
inline void micro_kernel_direct(const WeightMatrix& w, const int64_t* row, const float* x, int64_t x_stride, float* y,
                                int64_t y_stride) {
  constexpr int N = V::N;
  constexpr int64_t kLine = 64 / L::kBytes;  // columns per cache line
  const int64_t K = w.cols;
  const int64_t row_bytes = K * L::kBytes;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = static_cast<const uint8_t*>(w.data) + size_t(row[i]) * size_t(row_bytes);
  // 1 KB further along each stream, a little ahead of the hardware prefetcher, which waits
  // for a few misses in every new 4 KB page before it starts (measured on Zen 5: the
  // vocabulary head's BF16 rows read about 15% faster than with no or a 4 KB lead).
  constexpr int64_t ahead = 1024;
  typename V::F acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = V::zero();
  const int64_t kv = K / N * N;
  int64_t k = 0;
  // Two vectors per step (FP8 converts both at once); the accumulation order is the same
  // as one vector per step.
  for (; k + 2 * N <= kv; k += 2 * N) {
    if ((k & (kLine - 1)) == 0)
      for (int i = 0; i < R; ++i) __builtin_prefetch(rows[i] + ahead + k * L::kBytes, 0, 3);
    if (kLine <= N)  // F32 on AVX-512: each vector is a line of its own
      for (int i = 0; i < R; ++i) __builtin_prefetch(rows[i] + ahead + (k + N) * L::kBytes, 0, 3);
    typename V::F lo[R], hi[R];
    for (int i = 0; i < R; ++i) L::load2(rows[i], k, lo[i], hi[i]);
    fma_step<R, TT>(lo, x, x_stride, k, acc);
    fma_step<R, TT>(hi, x, x_stride, k + N, acc);
  }
  for (; k < kv; k += N) {
    if ((k & (kLine - 1)) == 0)
      for (int i = 0; i < R; ++i) __builtin_prefetch(rows[i] + ahead + k * L::kBytes, 0, 3);
    typename V::F wv[R];
    for (int i = 0; i < R; ++i) wv[i] = L::load(rows[i], k);
    fma_step<R, TT>(wv, x, x_stride, k, acc);
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) {
      float s = V::sum(acc[i][t]);
      for (int64_t k = kv; k < K; ++k) s += L::tail(w, row[i], k) * x[t * x_stride + k];
      y[t * y_stride + row[i]] = s;
    }
}

// All T tokens against R weight rows, in register tiles of up to kTok tokens; the rows'
// few kilobytes stay in L1 between tiles, so they are fetched from memory once.
// y is indexed by absolute row.
template <class L, int R>
inline void direct_tiles(const WeightMatrix& w, const int64_t* row, const float* x, int64_t x_stride, int64_t T,
                         float* y, int64_t y_stride) {
  constexpr int TT = V::kTok;
  int64_t t = 0;
  for (; t + TT <= T; t += TT)
    micro_kernel_direct<L, R, TT>(w, row, x + t * x_stride, x_stride, y + t * y_stride, y_stride);
  const float* xt = x + t * x_stride;
  float* yt = y + t * y_stride;
  switch (T - t) {  // remainder tiles (kTok <= 6)
    case 0: break;
    case 1: micro_kernel_direct<L, R, 1>(w, row, xt, x_stride, yt, y_stride); break;
    case 2: micro_kernel_direct<L, R, 2>(w, row, xt, x_stride, yt, y_stride); break;
    case 3: micro_kernel_direct<L, R, 3>(w, row, xt, x_stride, yt, y_stride); break;
    case 4: micro_kernel_direct<L, R, 4>(w, row, xt, x_stride, yt, y_stride); break;
    case 5: micro_kernel_direct<L, R, 5>(w, row, xt, x_stride, yt, y_stride); break;
  }
}

// Rows [a, b) as kRows sequential streams: tile j takes row j of each of kRows equal parts
// of the range. Leftover rows (fewer than kRows) run one by one at the end. y is indexed
// by absolute row.
template <class L>
inline void row_streams(const WeightMatrix& w, int64_t a, int64_t b, const float* x, int64_t x_stride, int64_t T,
                        float* y, int64_t y_stride) {
  const int64_t part = (b - a) / kRows;
  int64_t row[kRows];
  for (int64_t j = 0; j < part; ++j) {
    for (int i = 0; i < kRows; ++i) row[i] = a + i * part + j;
    direct_tiles<L, kRows>(w, row, x, x_stride, T, y, y_stride);
  }
  for (int64_t r = a + kRows * part; r < b; ++r) direct_tiles<L, 1>(w, &r, x, x_stride, T, y, y_stride);
}

// xs: scratch of T * w.cols floats (FP8 only).
inline void rows_direct(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                        float* y, int64_t y_stride, float* xs) {
  float* y0 = y - r0;
  switch (w.dtype) {
    case io::DType::BF16: return row_streams<LoadBf16>(w, r0, r1, x, x_stride, T, y0, y_stride);
    case io::DType::F16: return row_streams<LoadF16>(w, r0, r1, x, x_stride, T, y0, y_stride);
    case io::DType::F8_E4M3:
      // Streams within one row block at a time, which shares its scaled activations.
      for (int64_t a = r0, b; a < r1; a = b) {
        b = row_block_end(w, a, r1);
        scale_activations(w, a / w.block_rows, x, x_stride, T, xs);
        row_streams<LoadE4m3>(w, a, b, xs, w.cols, T, y0, y_stride);
      }
      return;
    default: return row_streams<LoadF32>(w, r0, r1, x, x_stride, T, y0, y_stride);
  }
}

// Rows [a, b) through the panel, tile by tile; `dec` decodes one row into the panel.
template <class Decode>
inline void panel_rows(const WeightMatrix& w, int64_t a, int64_t b, int64_t r0, const float* x, int64_t x_stride,
                       int64_t T, float* y, int64_t y_stride, float* panel, Decode dec) {
  const int64_t K = w.cols;
  int64_t r = a;
  for (; r + kRows <= b; r += kRows) {
    for (int i = 0; i < kRows; ++i) dec(w, r + i, panel + i * K);
    token_tiles<kRows>(panel, K, x, x_stride, T, y + (r - r0), y_stride);
  }
  for (; r < b; ++r) {
    dec(w, r, panel);
    token_tiles<1>(panel, K, x, x_stride, T, y + (r - r0), y_stride);
  }
}

// scratch: kSimdRowsScratch * w.cols floats (the panel, then scaled activations).
inline void rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T, float* y,
                 int64_t y_stride, float* scratch) {
  const int64_t K = w.cols;
  float* panel = scratch;
  float* xs = scratch + kRows * K;
  const bool fp8 = w.dtype == io::DType::F8_E4M3;
  // A batch of decode steps (continuous batching: one token per sequence) is a few tokens:
  // the panel's store and reload would cost more than decoding the weights per tile.
  if (T <= kDirectMaxTokens) return rows_direct(w, r0, r1, x, x_stride, T, y, y_stride, xs);
  // With many tokens, passes over chunks of kTokChunk keep their activations in cache;
  // the weight tile is decoded once per chunk.
  for (int64_t tc = 0; tc < T; tc += kTokChunk) {
    const int64_t tn = T - tc < kTokChunk ? T - tc : kTokChunk;
    const float* xc = x + tc * x_stride;
    float* yc = y + tc * y_stride;
    if (!fp8) {
      panel_rows(w, r0, r1, r0, xc, x_stride, tn, yc, y_stride, panel, decode_row_simd);
      continue;
    }
    for (int64_t a = r0, b; a < r1; a = b) {  // one row block at a time, as in rows_direct
      b = row_block_end(w, a, r1);
      scale_activations(w, a / w.block_rows, xc, x_stride, tn, xs);
      panel_rows(w, a, b, r0, xs, K, tn, yc, y_stride, panel, decode_row_unscaled);
    }
  }
}

// t_rows for a few tokens: CB column vectors of accumulators stay in registers while the
// rows stream past (storing the outputs after every row bound t_rows on stores). Each
// output gets the same operations in the same order as in t_rows: one fused multiply-add
// per row on the exactly decoded weight, unfused in the scalar tail.
template <class L, int CB>
inline void t_block(const WeightMatrix& w, int64_t r0, int64_t r1, const float* xt, int64_t c, float* yt) {
  constexpr int N = V::N;
  typename V::F acc[CB];
  for (int b = 0; b < CB; ++b) acc[b] = V::zero();
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = base + size_t(r) * size_t(w.cols) * L::kBytes;
    const typename V::F av = V::set1(xt[r - r0]);
    const float* srow = w.scale ? w.scale + (r / w.block_rows) * w.scale_cols : nullptr;
    for (int b = 0; b < CB; ++b) {
      typename V::F wv = L::load(row, c + b * N);
      if (srow) wv = V::mul(wv, V::set1(srow[(c + b * N) / w.block_cols] * 256.0f));
      acc[b] = V::fma(av, wv, acc[b]);
    }
  }
  for (int b = 0; b < CB; ++b) V::store(yt + c + b * N, acc[b]);
}

template <class L>
inline void t_rows_few(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                       float* y, int64_t y_stride) {
  constexpr int N = V::N;
  constexpr int CB = N == 16 ? 8 : 4;
  const int64_t C = w.cols, cv = C / N * N;
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * x_stride;
    float* yt = y + t * y_stride;
    int64_t c = 0;
    for (; c + CB * N <= cv; c += CB * N) t_block<L, CB>(w, r0, r1, xt, c, yt);
    for (; c < cv; c += N) t_block<L, 1>(w, r0, r1, xt, c, yt);
    for (; c < C; ++c) {
      float s = 0.0f;
      for (int64_t r = r0; r < r1; ++r) s += xt[r - r0] * w.at(r, c);
      yt[c] = s;
    }
  }
}

// Up to this many tokens, t_rows keeps its outputs in registers (t_rows_few).
constexpr int64_t kTransposedFewTokens = 4;

// row: scratch of w.cols floats.
inline void t_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T, float* y,
                   int64_t y_stride, float* row) {
  constexpr int N = V::N;
  const int64_t C = w.cols;
  if (T <= kTransposedFewTokens) {
    switch (w.dtype) {
      case io::DType::BF16: return t_rows_few<LoadBf16>(w, r0, r1, x, x_stride, T, y, y_stride);
      case io::DType::F16: return t_rows_few<LoadF16>(w, r0, r1, x, x_stride, T, y, y_stride);
      case io::DType::F32: return t_rows_few<LoadF32>(w, r0, r1, x, x_stride, T, y, y_stride);
      case io::DType::F8_E4M3:  // vectors must not straddle scale blocks
        if (w.block_cols % N == 0) return t_rows_few<LoadE4m3>(w, r0, r1, x, x_stride, T, y, y_stride);
        break;
      default: break;
    }
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) y[t * y_stride + c] = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    decode_row_simd(w, r, row);
    for (int64_t t = 0; t < T; ++t) {
      const float a = x[t * x_stride + (r - r0)];
      const typename V::F av = V::set1(a);
      float* yt = y + t * y_stride;
      int64_t c = 0;
      for (; c + N <= C; c += N) V::store(yt + c, V::fma(av, V::load(row + c), V::load(yt + c)));
      for (; c < C; ++c) yt[c] += a * row[c];
    }
  }
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
