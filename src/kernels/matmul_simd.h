// Entry points of the per-ISA matrix kernels (matmul_avx2.cc, matmul_avx512.cc, compiled
// with their own target flags from one template, matmul_simd_impl.h).
#pragma once

#include <cstdint>

#include "kernels/matmul.h"

namespace dsv3::kernels {

// Scratch sizes the caller provides: rows needs kSimdRowsScratch * w.cols floats (a panel
// of kSimdPanelRows decoded rows plus up to kSimdTokChunk tokens of block-scaled
// activations), t_rows w.cols floats.
constexpr int kSimdPanelRows = 4;
constexpr int kSimdTokChunk = 64;
constexpr int kSimdRowsScratch = kSimdPanelRows + kSimdTokChunk;

struct SimdKernels {
  void (*rows)(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T, float* y,
               int64_t y_stride, float* scratch);
  void (*t_rows)(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                 float* y, int64_t y_stride, float* scratch);
  void (*decode_row)(const WeightMatrix& w, int64_t r, float* out);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*latent_scores)(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                        int64_t rope, const float* row, float scale, float* out, int64_t out_stride);
  void (*weighted_rows)(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                        int64_t c1, float* out, int64_t out_stride);
  float (*fma_probe)(int64_t iters);  // 12 chains of N-wide FMAs per iteration
  int lanes;                          // N
};

#if defined(DSV3_X86_KERNELS)
extern const SimdKernels kAvx2Kernels;
extern const SimdKernels kAvx512Kernels;
#endif

}  // namespace dsv3::kernels
