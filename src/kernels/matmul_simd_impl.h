// The fast matrix kernels, written once over a vector-traits type V and compiled per ISA
// (matmul_avx2.cc, matmul_avx512.cc). Include only from those files.
//
// Scheme: a tile of kRows weight rows is decoded to fp32 into a per-thread panel (FP8 via
// e4m3 -> f16 bit placement -> f32, block scale folded in; BF16 by a shift), then a
// register-blocked dot-product micro-kernel runs kRows x kTok (row, token) pairs at once.
// For a few tokens (decode, or a decode batch) the micro-kernel reads the stored weights in
// place instead, tile after tile, while they sit in L1.
// Every (row, token) result is computed by the same sequence of operations whatever T or
// the tiling, so decode and prefill agree bit for bit.
//
// No standard-library templates or shared inline helpers are used here: this code is built
// with ISA flags, and an out-of-line copy of such a function could be picked by the linker
// for generic code, which would then crash on older CPUs. Scratch memory comes from the
// caller for the same reason.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/matmul.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

constexpr int kRows = kSimdPanelRows;  // weight rows per tile
constexpr int kTokChunk = 64;  // tokens whose activations stay cache-resident per pass
// Up to this many tokens, the micro-kernel reads the stored weights in place (no panel).
constexpr int64_t kDirectMaxTokens = 16;

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
    case DType::F32: std::memcpy(out, static_cast<const float*>(w.data) + base, size_t(cols) * 4); return;
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      int64_t c = 0;
      for (; c + N <= cols; c += N) V::store(out + c, V::load_bf16(p + c));
      for (; c < cols; ++c) out[c] = bf16_bits_to_f32(p[c]);
      return;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      int64_t c = 0;
      for (; c + N <= cols; c += N) V::store(out + c, V::load_f16(p + c));
      for (; c < cols; ++c) out[c] = w.at(r, c);
      return;
    }
    case DType::F8_E4M3: {
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
    for (int t = 0; t < TT; ++t) {
      const typename V::F xv = V::load(x + t * x_stride + k);
      for (int i = 0; i < R; ++i) acc[i][t] = V::fma(wv[i], xv, acc[i][t]);
    }
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

// Loads weight row r's vector at column k as fp32, exactly as decode_row_simd would have
// stored it (so the fused and the panel paths compute bit-identical results).
inline typename V::F load_weights(const WeightMatrix& w, const void* row, int64_t k, typename V::F scale) {
  switch (w.dtype) {
    case DType::BF16: return V::load_bf16(static_cast<const uint16_t*>(row) + k);
    case DType::F16: return V::load_f16(static_cast<const uint16_t*>(row) + k);
    case DType::F8_E4M3: return V::mul(V::load_e4m3(static_cast<const uint8_t*>(row) + k), scale);
    default: return V::load(static_cast<const float*>(row) + k);
  }
}

// The same micro-kernel reading the stored weights directly: for a handful of tokens
// (decode) the panel's store and reload would only add memory traffic.
template <int R, int TT>
inline void micro_kernel_direct(const WeightMatrix& w, int64_t r, const float* x, int64_t x_stride, float* y,
                                int64_t y_stride) {
  constexpr int N = V::N;
  const int64_t K = w.cols;
  const size_t esz = w.dtype == DType::F32 ? 4 : w.dtype == DType::F8_E4M3 ? 1 : 2;
  const uint8_t* rows[R];
  const float* srow[R];
  for (int i = 0; i < R; ++i) {
    rows[i] = static_cast<const uint8_t*>(w.data) + size_t(r + i) * size_t(K) * esz;
    srow[i] = w.scale ? w.scale + ((r + i) / w.block_rows) * w.scale_cols : nullptr;
  }
  typename V::F acc[R][TT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) acc[i][t] = V::zero();
  const int64_t kv = K / N * N;
  const int64_t step = w.scale ? w.block_cols : kv;  // FP8: one scale per block of columns
  for (int64_t k0 = 0; k0 < kv; k0 += step) {
    const int64_t k1 = k0 + step < kv ? k0 + step : kv;
    typename V::F sc[R];
    for (int i = 0; i < R; ++i) sc[i] = V::set1(srow[i] ? srow[i][k0 / w.block_cols] * 256.0f : 1.0f);
    for (int64_t k = k0; k < k1; k += N) {
      typename V::F wv[R];
      for (int i = 0; i < R; ++i) wv[i] = load_weights(w, rows[i], k, sc[i]);
      for (int t = 0; t < TT; ++t) {
        const typename V::F xv = V::load(x + t * x_stride + k);
        for (int i = 0; i < R; ++i) acc[i][t] = V::fma(wv[i], xv, acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < TT; ++t) {
      float s = V::sum(acc[i][t]);
      for (int64_t k = kv; k < K; ++k) s += w.at(r + i, k) * x[t * x_stride + k];
      y[t * y_stride + i] = s;
    }
}

// All T tokens against R weight rows, in register tiles of up to kTok tokens; the rows'
// few kilobytes stay in L1 between tiles, so they are fetched from memory once.
template <int R>
inline void direct_tiles(const WeightMatrix& w, int64_t r, const float* x, int64_t x_stride, int64_t T, float* y,
                         int64_t y_stride) {
  constexpr int TT = V::kTok;
  int64_t t = 0;
  for (; t + TT <= T; t += TT) micro_kernel_direct<R, TT>(w, r, x + t * x_stride, x_stride, y + t * y_stride, y_stride);
  switch (T - t) {  // remainder tiles (kTok <= 6)
    case 0: break;
    case 1: micro_kernel_direct<R, 1>(w, r, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 2: micro_kernel_direct<R, 2>(w, r, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 3: micro_kernel_direct<R, 3>(w, r, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 4: micro_kernel_direct<R, 4>(w, r, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
    case 5: micro_kernel_direct<R, 5>(w, r, x + t * x_stride, x_stride, y + t * y_stride, y_stride); break;
  }
}

inline void rows_direct(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                        float* y, int64_t y_stride) {
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) direct_tiles<kRows>(w, r, x, x_stride, T, y + (r - r0), y_stride);
  for (; r < r1; ++r) direct_tiles<1>(w, r, x, x_stride, T, y + (r - r0), y_stride);
}

// panel: scratch of kRows * w.cols floats.
inline void rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T, float* y,
                 int64_t y_stride, float* panel) {
  const int64_t K = w.cols;
  const bool direct_ok = w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16 ||
                         (w.dtype == DType::F8_E4M3 && w.block_cols % V::N == 0);
  // A batch of decode steps (continuous batching: one token per sequence) is a few tokens:
  // the panel's store and reload would cost more than decoding the weights per tile.
  if (direct_ok && T <= kDirectMaxTokens) return rows_direct(w, r0, r1, x, x_stride, T, y, y_stride);
  // With many tokens, passes over chunks of kTokChunk keep their activations in cache;
  // the weight tile is decoded once per chunk.
  for (int64_t tc = 0; tc < T; tc += kTokChunk) {
    const int64_t tn = T - tc < kTokChunk ? T - tc : kTokChunk;
    const float* xc = x + tc * x_stride;
    float* yc = y + tc * y_stride;
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows) {
      for (int i = 0; i < kRows; ++i) decode_row_simd(w, r + i, panel + i * K);
      token_tiles<kRows>(panel, K, xc, x_stride, tn, yc + (r - r0), y_stride);
    }
    for (; r < r1; ++r) {
      decode_row_simd(w, r, panel);
      token_tiles<1>(panel, K, xc, x_stride, tn, yc + (r - r0), y_stride);
    }
  }
}

// row: scratch of w.cols floats.
inline void t_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T, float* y,
                   int64_t y_stride, float* row) {
  constexpr int N = V::N;
  const int64_t C = w.cols;
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

inline float dot(const float* a, const float* b, int64_t n) {
  constexpr int N = V::N;
  typename V::F acc0 = V::zero(), acc1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = V::fma(V::load(a + i), V::load(b + i), acc0);
    acc1 = V::fma(V::load(a + i + N), V::load(b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = V::fma(V::load(a + i), V::load(b + i), acc0);
  float s = V::sum(V::add(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float a, const float* x, float* y, int64_t n) {
  constexpr int N = V::N;
  const typename V::F av = V::set1(a);
  int64_t i = 0;
  for (; i + N <= n; i += N) V::store(y + i, V::fma(av, V::load(x + i), V::load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// Peak FMA probe: 12 independent chains hide the FMA latency; returns a value that depends
// on every chain so nothing is optimised away. FLOPs = iters * 12 * N * 2.
inline float fma_probe(int64_t iters) {
  typename V::F a[12];
  for (int i = 0; i < 12; ++i) a[i] = V::set1(float(i) * 1e-3f);
  const typename V::F m = V::set1(0.999999f), c = V::set1(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = V::fma(a[i], m, c);
  typename V::F s = a[0];
  for (int i = 1; i < 12; ++i) s = V::add(s, a[i]);
  return V::sum(s);
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
