// Matrix products against checkpoint weights in their stored format (F32, BF16, F16, or
// FP8 e4m3 with block scales), decoded on the fly: there is never a dequantized copy of a
// weight matrix. Activations are fp32 and accumulation is fp32.
//
// Every entry point has a scalar twin (the `_ref` functions); set_reference_kernels(true)
// routes every call to them, which is what `--reference-kernels` does.
#pragma once

#include <cstdint>
#include <string>

#include "io/dtype.h"

namespace dsv3 {

//! A [rows, cols] row-major weight matrix (Hugging Face [out, in]) viewing mmapped bytes.
struct WeightMatrix {
  std::string name;
  io::DType dtype = io::DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  // FP8 only: scale_inv as fp32, [ceil(rows/block_rows), ceil(cols/block_cols)] row-major.
  const float* scale = nullptr;
  int64_t block_rows = 128, block_cols = 128;
  int64_t scale_cols = 0;

  bool empty() const { return data == nullptr; }
  uint64_t bytes() const;  // stored bytes, scales included
  //! Element (r, c) dequantized; the scalar twin of every decoder.
  float at(int64_t r, int64_t c) const;
  //! Element (r, c) without its FP8 block scale (the plain e4m3 value); at() otherwise.
  float raw_at(int64_t r, int64_t c) const;
};

namespace kernels {

void set_reference_kernels(bool on);
bool reference_kernels();

//! Decodes row r (all cols) into out.
void decode_row(const WeightMatrix& w, int64_t r, float* out);

//! y[t][r - r0] = sum_c w[r][c] * x[t][c] for t < T, r in [r0, r1). Single-threaded.
//! x rows are x_stride floats apart, y rows y_stride floats apart.
void matmul_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                 int64_t T, float* y, int64_t y_stride);

//! y[t][c] = sum_{r in [r0, r1)} x[t][r - r0] * w[r][c] for all cols c. Single-threaded.
//! (The transposed product absorbed MLA needs to fold kv_b into the query.)
void matmul_t_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                   int64_t T, float* y, int64_t y_stride);

//! Dot product of two fp32 vectors (fixed summation order, so results never depend on how
//! many tokens or threads a call had).
float dot(const float* a, const float* b, int64_t n);
float dot_ref(const float* a, const float* b, int64_t n);
//! y += a * x over n floats.
void axpy(float a, const float* x, float* y, int64_t n);
//! Attention scores of H heads against one cached latent row [R + rope]:
//! out[h * out_stride] = (qa_h . row[0, R) + qr_h . row[R, R + rope)) * scale, where qa_h =
//! qa + h * qa_stride (the absorbed query) and qr_h = qr + h * qr_stride (its rope part).
void latent_scores(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                   int64_t rope, const float* row, float scale, float* out, int64_t out_stride);
void latent_scores_ref(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                       int64_t rope, const float* row, float scale, float* out, int64_t out_stride);
//! out[h * out_stride + c - c0] = sum_{j < n} p[h * p_stride + j] * rows[j][c] for h < H and
//! c in [c0, c1), summed in j order (attention's probability-weighted sum of cached rows).
//! The fast path fuses each multiply-add; the scalar twin does not.
void weighted_rows(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                   int64_t c1, float* out, int64_t out_stride);
void weighted_rows_ref(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                       int64_t c1, float* out, int64_t out_stride);

//! y[T, rows] = x[T, cols] * w^T, split over the global thread pool by rows.
void matmul(const WeightMatrix& w, const float* x, int64_t T, float* y);

//! Weight bytes the fast and reference products have read since the start (all threads),
//! for the bench's bytes-per-token figure.
uint64_t weight_bytes_read();

//! Measures this thread's peak fp32 FMA rate with the active ISA, in GFLOP/s.
double probe_peak_gflops(double seconds);

// Scalar twins.
void matmul_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                     int64_t T, float* y, int64_t y_stride);
void matmul_t_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                       int64_t T, float* y, int64_t y_stride);

}  // namespace kernels
}  // namespace dsv3
