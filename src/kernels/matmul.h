// Matrix products against checkpoint weights in their stored format (weight_matrix.h),
// decoded on the fly, in either numerics (numerics.h): fp32 activations times exactly
// decoded weights, or BF16-rounded activations and weights with the summation order of
// bf16.h. Accumulation is fp32 in both.
//
// Every entry point has a scalar twin (the `_ref` functions); set_reference_kernels(true)
// (isa.h) routes every call to them, which is what `--reference-kernels` does. Each
// (row, token) result is computed the same way whatever T, the row range or the thread
// count, so decode and prefill agree bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "kernels/context.h"
#include "kernels/weight_matrix.h"

namespace dsv3::kernels {

//! y[T, rows] = x[T, cols] * w^T in ctx.numerics(), split by rows over ctx's pool
//! (per-thread scratch from ctx).
void matmul(Context& ctx, const WeightMatrix& w, const float* x, int64_t T, float* y);
//! The same in the given numerics (the router stays fp32 whatever the context says).
void matmul(Context& ctx, const WeightMatrix& w, const float* x, int64_t T, float* y, Numerics numerics);

//! Products that share one input x [T, cols], in one pool job: y_i = x * w_i^T for each
//! (w_i, y_i), rows split over the threads as one list (fewer jobs per step than one matmul
//! each; the same results, as every output is computed alone).
struct MatmulOut {
  const WeightMatrix* w;
  float* y;  // [T, w->rows]
};
void matmul_shared_input(Context& ctx, std::initializer_list<MatmulOut> outs, const float* x, int64_t T);

//! Floats of scratch that matmul_rows and matmul_t_rows need for w (either numerics).
size_t matmul_scratch(const WeightMatrix& w);

//! y[t][r - r0] = sum_c w[r][c] * x[t][c] for t < T, r in [r0, r1), on the calling thread.
//! x rows are x_stride floats apart, y rows y_stride floats apart; scratch: matmul_scratch(w).
void matmul_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                 float* y, int64_t y_stride, float* scratch, Numerics numerics = Numerics::Fp32);

//! y[t][c] = sum_{r in [r0, r1)} x[t][r - r0] * w[r][c] for all cols c, on the calling thread.
//! (The transposed product absorbed MLA needs to fold kv_b into the query.) In bf16 numerics
//! x is rounded to BF16 and the sums run over r in order (each product exact).
void matmul_t_rows(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                   float* y, int64_t y_stride, float* scratch, Numerics numerics = Numerics::Fp32);

// Scalar twins.
void matmul_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                     float* y, int64_t y_stride);
void matmul_t_rows_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                       float* y, int64_t y_stride);
//! The BF16 product as bf16.h defines it: x rounded to BF16 (FP8: x times the row block's
//! scales, then rounded; the e4m3 weights exact), F32/F16 weights rounded to BF16.
void matmul_rows_bf16_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                          int64_t T, float* y, int64_t y_stride);
//! The FP8 product (`--numerics fp8`, FP8 weights with block_cols a multiple of 64): each
//! token's 128-channel blocks quantized to e4m3 (bf16.h: fp8_act_scale, e4m3_round_bf16), then
//! bf16.h's fp8_block_dot_ref with scale = activation scale x weight block scale.
void matmul_rows_fp8_ref(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                         float* y, int64_t y_stride);
//! Whether `--numerics fp8` computes w's products as FP8 (an FP8 weight with 64-multiple
//! scale blocks); otherwise they run in bf16, as the official code runs BF16 weights.
bool fp8_numerics_applies(const WeightMatrix& w);

//! Weight bytes the fast and reference products have read since the start (all threads),
//! for the bench's bytes-per-token figure.
uint64_t weight_bytes_read();

}  // namespace dsv3::kernels
