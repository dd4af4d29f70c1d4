#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/simd/table.h"
#include "kernels/vector_ops.h"

namespace dsv3::kernels {
namespace {

std::atomic<uint64_t> g_weight_bytes{0};

void count_rows(const WeightMatrix& w, int64_t r0, int64_t r1) {
  if (!w.is_weight) return;
  uint64_t b = uint64_t(r1 - r0) * uint64_t(w.cols) * io::dtype_size(w.dtype);
  if (w.scale) b += uint64_t((r1 - r0 + w.block_rows - 1) / w.block_rows) * uint64_t(w.scale_cols) * 4;
  g_weight_bytes.fetch_add(b, std::memory_order_relaxed);
}

}  // namespace

size_t matmul_scratch(const WeightMatrix& w) {
  // BF16: the activation chunk and the panel as BF16 [*, K64], then one decoded fp32 row.
  const size_t bf16 = (size_t(kSimdRowsScratch) * size_t(bf16_padded(w.cols)) + 1) / 2 + size_t(w.cols) + 16;
  // FP8 numerics: the quantized chunk [kSimdTokChunk, blocks x block_cols] as BF16, two
  // [kSimdTokChunk, blocks] scale tables and a panel of kSimdPanelRows rows as BF16.
  size_t fp8 = 0;
  if (w.dtype == io::DType::F8_E4M3 && w.block_cols > 0) {
    const size_t nb = size_t((w.cols + w.block_cols - 1) / w.block_cols);
    const size_t n = nb * size_t(w.block_cols);
    fp8 = (size_t(kSimdTokChunk) * n + 1) / 2 + 2 * size_t(kSimdTokChunk) * nb + (size_t(kSimdPanelRows) * n + 1) / 2 + 16;
  }
  return std::max({size_t(kSimdRowsScratch) * size_t(w.cols), bf16, fp8});
}

void matmul_rows_bf16_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                          int64_t T, float* y, int64_t y_stride) {
  count_rows(w, r0, r1);
  const int64_t K = w.cols, K64 = bf16_padded(K);
  const bool fp8 = w.dtype == io::DType::F8_E4M3;
  // Element k of the summation order (bf16.h): FP8 in kernel order, the rest in order.
  auto element = [&](int64_t p) { return fp8 ? p / kBf16Block * kBf16Block + fp8_order_element(int(p % kBf16Block)) : p; };
  std::vector<uint16_t> wb(static_cast<size_t>(K64)), xb(static_cast<size_t>(T * K64));
  // The activations depend on the row only through an FP8 row block's scales: rounded once
  // per block of rows (all of them for other weights).
  const int64_t span = fp8 ? w.block_rows : std::max<int64_t>(r1 - r0, 1);
  for (int64_t a = r0, b; a < r1; a = b) {
    b = std::min(r1, (a / span + 1) * span);
    const float* srow = fp8 ? w.scale + (a / w.block_rows) * w.scale_cols : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * x_stride;
      for (int64_t p = 0; p < K64; ++p) {
        const int64_t c = element(p);
        xb[size_t(t * K64 + p)] = c >= K ? 0 : bf16_round(srow ? xt[c] * srow[c / w.block_cols] : xt[c]);
      }
    }
    for (int64_t r = a; r < b; ++r) {
      for (int64_t p = 0; p < K64; ++p) {
        const int64_t c = element(p);
        wb[size_t(p)] = c >= K ? 0 : w.dtype == io::DType::BF16 ? static_cast<const uint16_t*>(w.data)[r * K + c]
                                                                  : bf16_round(w.raw_at(r, c));
      }
      for (int64_t t = 0; t < T; ++t) y[t * y_stride + (r - r0)] = bf16_dot_ref(wb.data(), &xb[size_t(t * K64)], K64);
    }
  }
}

void matmul_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                     float* y, int64_t y_stride) {
  count_rows(w, r0, r1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      float s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += w.at(r, c) * x[t * x_stride + c];
      y[t * y_stride + (r - r0)] = s;
    }
}

void matmul_t_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                       float* y, int64_t y_stride) {
  count_rows(w, r0, r1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < w.cols; ++c) {
      float s = 0;
      for (int64_t r = r0; r < r1; ++r) s += x[t * x_stride + (r - r0)] * w.at(r, c);
      y[t * y_stride + c] = s;
    }
}

bool fp8_numerics_applies(const WeightMatrix& w) {
  return w.dtype == io::DType::F8_E4M3 && w.block_cols % kBf16Block == 0;
}

void matmul_rows_fp8_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                         float* y, int64_t y_stride) {
  if (!fp8_numerics_applies(w)) fail("weight ", w.name, ": --numerics fp8 needs FP8 weights in 64-multiple blocks");
  count_rows(w, r0, r1);
  const int64_t K = w.cols, bc = w.block_cols, nb = (K + bc - 1) / bc, n = nb * bc;
  auto element = [&](int64_t p) { return p / kBf16Block * kBf16Block + fp8_order_element(int(p % kBf16Block)); };
  std::vector<uint16_t> wb(static_cast<size_t>(n)), xq(static_cast<size_t>(T * n)), xn(static_cast<size_t>(n));
  std::vector<float> sx(static_cast<size_t>(T * nb)), scale(static_cast<size_t>(nb));
  for (int64_t t = 0; t < T; ++t) {  // act_quant: one scale per token and block
    const float* xt = x + t * x_stride;
    for (int64_t b = 0; b < nb; ++b) {
      float amax = 0;
      for (int64_t c = b * bc; c < std::min(K, (b + 1) * bc); ++c) amax = std::max(amax, std::fabs(xt[c]));
      const float s = sx[size_t(t * nb + b)] = fp8_act_scale(amax, w.ue8m0);
      for (int64_t c = b * bc; c < (b + 1) * bc; ++c) xn[size_t(c)] = c < K ? e4m3_round_bf16(xt[c] / s) : 0;
    }
    for (int64_t p = 0; p < n; ++p) xq[size_t(t * n + p)] = xn[size_t(element(p))];
  }
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t p = 0; p < n; ++p) {
      const int64_t c = element(p);
      wb[size_t(p)] = c >= K ? 0 : bf16_round(w.raw_at(r, c));
    }
    const float* srow = w.scale + (r / w.block_rows) * w.scale_cols;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = 0; b < nb; ++b) scale[size_t(b)] = sx[size_t(t * nb + b)] * srow[b];
      y[t * y_stride + (r - r0)] = fp8_block_dot_ref(wb.data(), &xq[size_t(t * n)], n, bc, scale.data());
    }
  }
}

void matmul_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                 float* y, int64_t y_stride, float* scratch, Numerics numerics) {
  if (numerics == Numerics::Fp8) {
    if (!fp8_numerics_applies(w)) return matmul_rows(w, r0, r1, x, x_stride, T, y, y_stride, scratch, Numerics::Bf16);
    const SimdKernels* k = reference_kernels() ? nullptr : active_simd();
    if (!k || !k->rows_fp8) return matmul_rows_fp8_ref(w, r0, r1, x, x_stride, T, y, y_stride);
    count_rows(w, r0, r1);
    return k->rows_fp8(w, r0, r1, x, x_stride, T, y, y_stride, scratch);
  }
  if (numerics == Numerics::Bf16) {
    const SimdKernels* k = reference_kernels() ? nullptr : active_simd();
    if (!k) return matmul_rows_bf16_ref(w, r0, r1, x, x_stride, T, y, y_stride);  // the portable path too
    count_rows(w, r0, r1);
    return k->rows_bf16(w, r0, r1, x, x_stride, T, y, y_stride, scratch);
  }
  if (reference_kernels()) return matmul_rows_ref(w, r0, r1, x, x_stride, T, y, y_stride);
  count_rows(w, r0, r1);
  if (const SimdKernels* k = active_simd()) return k->rows(w, r0, r1, x, x_stride, T, y, y_stride, scratch);
  float* row = scratch;
  for (int64_t r = r0; r < r1; ++r) {
    decode_row(w, r, row);  // decoded once, reused by every token
    for (int64_t t = 0; t < T; ++t) y[t * y_stride + (r - r0)] = dot(row, x + t * x_stride, w.cols);
  }
}

void matmul_t_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                   float* y, int64_t y_stride, float* scratch, Numerics numerics) {
  if (numerics != Numerics::Fp32) {  // fp8 too: the official absorb mode's einsum is BF16
    // The inputs rounded to BF16, then the fp32 product: with BF16-exact weights every
    // product is exact, so that is a BF16 product summed over r in order. Tokens go in
    // chunks that fit the scratch after its w.cols floats of row buffer.
    const int64_t n = r1 - r0, room = int64_t(matmul_scratch(w)) - w.cols;
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(T, room / std::max<int64_t>(n, 1)));
    float* xr = scratch + w.cols;
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t tn = std::min(chunk, T - t0);
      for (int64_t t = 0; t < tn; ++t)
        for (int64_t i = 0; i < n; ++i) xr[t * n + i] = bf16_value(bf16_round(x[(t0 + t) * x_stride + i]));
      matmul_t_rows(w, r0, r1, xr, n, tn, y + t0 * y_stride, y_stride, scratch, Numerics::Fp32);
    }
    return;
  }
  if (reference_kernels()) return matmul_t_rows_ref(w, r0, r1, x, x_stride, T, y, y_stride);
  count_rows(w, r0, r1);
  if (const SimdKernels* k = active_simd()) return k->t_rows(w, r0, r1, x, x_stride, T, y, y_stride, scratch);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < w.cols; ++c) y[t * y_stride + c] = 0;
  float* row = scratch;
  for (int64_t r = r0; r < r1; ++r) {
    decode_row(w, r, row);
    for (int64_t t = 0; t < T; ++t) {
      const float a = x[t * x_stride + (r - r0)];
      float* yt = y + t * y_stride;
      for (int64_t c = 0; c < w.cols; ++c) yt[c] += a * row[c];
    }
  }
}

void matmul(Context& ctx, const WeightMatrix& w, const float* x, int64_t T, float* y) {
  matmul(ctx, w, x, T, y, ctx.numerics());
}

void matmul(Context& ctx, const WeightMatrix& w, const float* x, int64_t T, float* y, Numerics n) {
  // The twins run on the calling thread (matmul_rows sends every numerics to its own).
  if (reference_kernels()) return matmul_rows(w, 0, w.rows, x, w.cols, T, y, w.rows, nullptr, n);
  const size_t need = matmul_scratch(w);
  ctx.pool().parallel_for(w.rows, [&](int th, int64_t r0, int64_t r1) {
    matmul_rows(w, r0, r1, x, w.cols, T, y + r0, w.rows, ctx.scratch(th, need), n);
  });
}

bool bf16_products_match_twin(const SimdKernels& k) {
  // Values over 2^-30..2^30 make the order and rounding of every add visible; a few
  // subnormals check that they read as zero.
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return uint32_t(state >> 32);
  };
  auto wide = [&] {
    const uint32_t r = next();
    if (r % 29 == 0) return std::ldexp(float(r % 7 + 1), -140);  // subnormal
    return std::ldexp(float(int(r % 2001) - 1000) / 1000.0f, int((r >> 11) % 61) - 30);
  };
  const int64_t rows = 8, cols = 256, T = 20;
  std::vector<float> x(size_t(T * cols));
  for (float& v : x) v = wide();
  std::vector<uint16_t> wb(size_t(rows * cols));
  for (uint16_t& v : wb) v = bf16_round(wide());
  std::vector<uint8_t> w8(size_t(rows * cols));
  for (uint8_t& v : w8) {
    v = uint8_t(next());
    if ((v & 0x7F) == 0x7F) v = 0;
  }
  const float scales[2] = {0.75f, 3.0e-3f};
  WeightMatrix bf{"bf16 self-check", io::DType::BF16, wb.data(), rows, cols};
  WeightMatrix f8{"fp8 self-check", io::DType::F8_E4M3, w8.data(), rows, cols};
  f8.scale = scales;
  f8.scale_cols = 2;
  for (const WeightMatrix* w : {&bf, &f8})
    for (int64_t t : {int64_t(1), T}) {
      std::vector<float> got(size_t(t * rows)), want(got.size()), scratch(matmul_scratch(*w));
      k.rows_bf16(*w, 0, rows, x.data(), cols, t, got.data(), rows, scratch.data());
      matmul_rows_bf16_ref(*w, 0, rows, x.data(), cols, t, want.data(), rows);
      if (std::memcmp(got.data(), want.data(), got.size() * 4) != 0) return false;
    }
  return true;
}

void matmul_shared_input(Context& ctx, std::initializer_list<MatmulOut> outs, const float* x, int64_t T) {
  int64_t total = 0;
  size_t need = 0;
  for (const MatmulOut& o : outs) {
    total += o.w->rows;
    need = std::max(need, matmul_scratch(*o.w));
  }
  const Numerics n = ctx.numerics();
  if (reference_kernels()) {
    for (const MatmulOut& o : outs) matmul(ctx, *o.w, x, T, o.y, n);
    return;
  }
  // Thread th takes rows [r0, r1) of the outputs laid end to end.
  ctx.pool().parallel_for(total, [&](int th, int64_t r0, int64_t r1) {
    int64_t base = 0;
    for (const MatmulOut& o : outs) {
      const int64_t a = std::max(r0, base), b = std::min(r1, base + o.w->rows);
      if (a < b)
        matmul_rows(*o.w, a - base, b - base, x, o.w->cols, T, o.y + (a - base), o.w->rows, ctx.scratch(th, need), n);
      base += o.w->rows;
    }
  });
}

uint64_t weight_bytes_read() { return g_weight_bytes.load(std::memory_order_relaxed); }

}  // namespace dsv3::kernels
