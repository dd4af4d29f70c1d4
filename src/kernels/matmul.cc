#include "kernels/matmul.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "base/numeric.h"
#include "kernels/isa.h"
#include "kernels/matmul_simd.h"
#include "threading/pool.h"

namespace dsv3 {

uint64_t WeightMatrix::bytes() const {
  uint64_t b = uint64_t(rows) * uint64_t(cols) * io::dtype_size(dtype);
  if (scale) b += uint64_t((rows + block_rows - 1) / block_rows) * uint64_t(scale_cols) * 4;
  return b;
}

float WeightMatrix::at(int64_t r, int64_t c) const {
  const size_t i = size_t(r) * size_t(cols) + size_t(c);
  switch (dtype) {
    case io::DType::F32: return static_cast<const float*>(data)[i];
    case io::DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case io::DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case io::DType::F8_E4M3:
      return e4m3_to_f32(static_cast<const uint8_t*>(data)[i]) *
             scale[(r / block_rows) * scale_cols + c / block_cols];
    default: fail("weight ", name, ": dtype ", io::dtype_name(dtype), " cannot be used as a matrix");
  }
}

float WeightMatrix::raw_at(int64_t r, int64_t c) const {
  if (dtype != io::DType::F8_E4M3) return at(r, c);
  return e4m3_to_f32(static_cast<const uint8_t*>(data)[size_t(r) * size_t(cols) + size_t(c)]);
}

namespace kernels {
namespace {
std::atomic<bool> g_reference{false};
std::atomic<uint64_t> g_weight_bytes{0};

void count_rows(const WeightMatrix& w, int64_t r0, int64_t r1) {
  uint64_t b = uint64_t(r1 - r0) * uint64_t(w.cols) * io::dtype_size(w.dtype);
  if (w.scale) b += uint64_t((r1 - r0 + w.block_rows - 1) / w.block_rows) * uint64_t(w.scale_cols) * 4;
  g_weight_bytes.fetch_add(b, std::memory_order_relaxed);
}

// Dot product with eight independent accumulators: the compiler vectorises it without
// -ffast-math, and the summation order is fixed (independent of T and of threading), so
// decode and prefill see bit-identical products.
inline float dot_fast(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

thread_local std::vector<float> t_row;
float* row_buffer(int64_t n) {
  if (int64_t(t_row.size()) < n) t_row.resize(size_t(n));
  return t_row.data();
}

// The per-ISA kernels for the active ISA, or nullptr for the portable path.
const SimdKernels* simd() {
#if defined(DSV3_X86_KERNELS)
  switch (active_isa()) {
    case Isa::Avx512: return &kAvx512Kernels;
    case Isa::Avx2: return &kAvx2Kernels;
    case Isa::Scalar: return nullptr;
  }
#endif
  return nullptr;
}
}  // namespace

float dot_ref(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot(const float* a, const float* b, int64_t n) {
  if (reference_kernels()) return dot_ref(a, b, n);
  if (const SimdKernels* k = simd()) return k->dot(a, b, n);
  return dot_fast(a, b, n);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  if (!reference_kernels())
    if (const SimdKernels* k = simd()) return k->axpy(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void latent_scores_ref(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                       int64_t rope, const float* row, float scale, float* out, int64_t out_stride) {
  for (int64_t h = 0; h < H; ++h)
    out[h * out_stride] = (dot_ref(qa + h * qa_stride, row, R) + dot_ref(qr + h * qr_stride, row + R, rope)) * scale;
}

void latent_scores(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                   int64_t rope, const float* row, float scale, float* out, int64_t out_stride) {
  if (!reference_kernels())
    if (const SimdKernels* k = simd()) return k->latent_scores(qa, qa_stride, qr, qr_stride, H, R, rope, row, scale, out, out_stride);
  for (int64_t h = 0; h < H; ++h)
    out[h * out_stride] = (dot_fast(qa + h * qa_stride, row, R) + dot_fast(qr + h * qr_stride, row + R, rope)) * scale;
}

void weighted_rows_ref(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                       int64_t c1, float* out, int64_t out_stride) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = c0; c < c1; ++c) {
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += p[h * p_stride + j] * rows[j][c];
      out[h * out_stride + (c - c0)] = s;
    }
}

void weighted_rows(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                   int64_t c1, float* out, int64_t out_stride) {
  if (!reference_kernels())
    if (const SimdKernels* k = simd()) return k->weighted_rows(p, p_stride, H, rows, n, c0, c1, out, out_stride);
  weighted_rows_ref(p, p_stride, H, rows, n, c0, c1, out, out_stride);
}

void set_reference_kernels(bool on) { g_reference.store(on); }
bool reference_kernels() { return g_reference.load(); }

void decode_row(const WeightMatrix& w, int64_t r, float* out) {
  const size_t base = size_t(r) * size_t(w.cols);
  switch (w.dtype) {
    case io::DType::F32: {
      const float* p = static_cast<const float*>(w.data) + base;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = p[c];
      return;
    }
    case io::DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = bf16_to_f32(p[c]);
      return;
    }
    case io::DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = f16_to_f32(p[c]);
      return;
    }
    case io::DType::F8_E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + base;
      const float* lut = e4m3_table();
      const float* srow = w.scale + (r / w.block_rows) * w.scale_cols;
      for (int64_t c0 = 0, b = 0; c0 < w.cols; c0 += w.block_cols, ++b) {
        const int64_t c1 = std::min(w.cols, c0 + w.block_cols);
        const float s = srow[b];
        for (int64_t c = c0; c < c1; ++c) out[c] = lut[p[c]] * s;
      }
      return;
    }
    default: fail("weight ", w.name, ": dtype ", io::dtype_name(w.dtype), " cannot be used as a matrix");
  }
}

void matmul_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                     int64_t T, float* y, int64_t y_stride) {
  count_rows(w, r0, r1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      float s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += w.at(r, c) * x[t * x_stride + c];
      y[t * y_stride + (r - r0)] = s;
    }
}

void matmul_t_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                       int64_t T, float* y, int64_t y_stride) {
  count_rows(w, r0, r1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < w.cols; ++c) {
      float s = 0;
      for (int64_t r = r0; r < r1; ++r) s += x[t * x_stride + (r - r0)] * w.at(r, c);
      y[t * y_stride + c] = s;
    }
}

void matmul_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                 int64_t T, float* y, int64_t y_stride) {
  if (reference_kernels()) return matmul_rows_ref(w, r0, r1, x, x_stride, T, y, y_stride);
  count_rows(w, r0, r1);
  if (const SimdKernels* k = simd()) return k->rows(w, r0, r1, x, x_stride, T, y, y_stride, row_buffer(kSimdRowsScratch * w.cols));
  float* row = row_buffer(w.cols);
  for (int64_t r = r0; r < r1; ++r) {
    decode_row(w, r, row);  // decoded once, reused by every token
    for (int64_t t = 0; t < T; ++t) y[t * y_stride + (r - r0)] = dot_fast(row, x + t * x_stride, w.cols);
  }
}

void matmul_t_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                   int64_t T, float* y, int64_t y_stride) {
  if (reference_kernels()) return matmul_t_rows_ref(w, r0, r1, x, x_stride, T, y, y_stride);
  count_rows(w, r0, r1);
  if (const SimdKernels* k = simd()) return k->t_rows(w, r0, r1, x, x_stride, T, y, y_stride, row_buffer(w.cols));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < w.cols; ++c) y[t * y_stride + c] = 0;
  float* row = row_buffer(w.cols);
  for (int64_t r = r0; r < r1; ++r) {
    decode_row(w, r, row);
    for (int64_t t = 0; t < T; ++t) {
      const float a = x[t * x_stride + (r - r0)];
      float* yt = y + t * y_stride;
      for (int64_t c = 0; c < w.cols; ++c) yt[c] += a * row[c];
    }
  }
}

uint64_t weight_bytes_read() { return g_weight_bytes.load(std::memory_order_relaxed); }

double probe_peak_gflops(double seconds) {
  const SimdKernels* k = simd();
  const int lanes = k ? k->lanes : 1;
  volatile float sink = 0;
  int64_t iters = 1 << 16;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    if (k) {
      sink = sink + k->fma_probe(iters);
    } else {
      float a[12];
      for (int i = 0; i < 12; ++i) a[i] = float(i);
      for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < 12; ++i) a[i] = std::fma(a[i], 0.999999f, 1e-7f);
      for (int i = 0; i < 12; ++i) sink = sink + a[i];
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= seconds) return double(iters) * 12.0 * lanes * 2.0 / s / 1e9;
    iters *= 2;
  }
}

void matmul(const WeightMatrix& w, const float* x, int64_t T, float* y) {
  if (reference_kernels()) return matmul_rows_ref(w, 0, w.rows, x, w.cols, T, y, w.rows);
  ThreadPool::global().parallel_for(w.rows, [&](int, int64_t r0, int64_t r1) {
    matmul_rows(w, r0, r1, x, w.cols, T, y + r0, w.rows);
  });
}

}  // namespace kernels
}  // namespace dsv3
