#include "kernels/matmul.h"

#include <atomic>

#include "base/error.h"
#include "kernels/isa.h"
#include "kernels/simd/table.h"
#include "kernels/vector_ops.h"

namespace dsv3::kernels {
namespace {

std::atomic<uint64_t> g_weight_bytes{0};

void count_rows(const WeightMatrix& w, int64_t r0, int64_t r1) {
  uint64_t b = uint64_t(r1 - r0) * uint64_t(w.cols) * io::dtype_size(w.dtype);
  if (w.scale) b += uint64_t((r1 - r0 + w.block_rows - 1) / w.block_rows) * uint64_t(w.scale_cols) * 4;
  g_weight_bytes.fetch_add(b, std::memory_order_relaxed);
}

}  // namespace

size_t matmul_scratch(const WeightMatrix& w) { return size_t(kSimdRowsScratch) * size_t(w.cols); }

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

void matmul_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                 float* y, int64_t y_stride, float* scratch) {
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
                   float* y, int64_t y_stride, float* scratch) {
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
  if (reference_kernels()) return matmul_rows_ref(w, 0, w.rows, x, w.cols, T, y, w.rows);
  const size_t need = matmul_scratch(w);
  ctx.pool().parallel_for(w.rows, [&](int th, int64_t r0, int64_t r1) {
    matmul_rows(w, r0, r1, x, w.cols, T, y + r0, w.rows, ctx.scratch(th, need));
  });
}

uint64_t weight_bytes_read() { return g_weight_bytes.load(std::memory_order_relaxed); }

}  // namespace dsv3::kernels
