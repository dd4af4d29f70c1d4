// Row-wise pieces with their backward passes: embedding lookup, RMSNorm and interleaved
// RoPE. Backward functions accumulate (+=) into every gradient they write.
#pragma once

#include <cstdint>
#include <vector>

#include "threading/pool.h"

namespace dsv3::train {

//! out[T, D] = E[tokens[t]].
template <class S>
void embedding_forward(const int32_t* tokens, int64_t T, const S* E, int64_t D, S* out);
//! dE[tokens[t]] += dout[t].
template <class S>
void embedding_backward(const int32_t* tokens, int64_t T, const S* dout, int64_t D, S* dE);

//! y[t] = w * x[t] * rstd[t], rstd[t] = 1/sqrt(mean(x[t]^2) + eps); rows are `stride`
//! apart in x (n values used), packed (n apart) in y. rstd [T] is kept for the backward.
//! Rows are split over `pool` when given (the same bits: each row is computed alone).
template <class S>
void rms_norm_forward(const S* x, int64_t stride, const S* w, int64_t T, int64_t n, double eps, S* y, S* rstd,
                      ThreadPool* pool = nullptr);
//! dx (rows `stride` apart) += d/dx, dw += d/dw, given dy [T, n] packed. dw may be null.
//! dx's rows are split over `pool` when given; dw sums the rows in order on the caller.
template <class S>
void rms_norm_backward(const S* x, int64_t stride, const S* w, const S* rstd, const S* dy, int64_t T, int64_t n,
                       S* dx, S* dw, ThreadPool* pool = nullptr);

//! Rotates, in place, the interleaved pairs of the d-wide slice at x + t*row_stride +
//! h*head_stride for t < T, h < H by angle (t + pos0) * freqs[i]; `inverse` rotates back,
//! which is also the backward pass (the rotation is orthogonal).
template <class S>
void rope_apply(S* x, int64_t T, int64_t H, int64_t row_stride, int64_t head_stride, int64_t d,
                const std::vector<double>& freqs, int64_t pos0, bool inverse);

}  // namespace dsv3::train
