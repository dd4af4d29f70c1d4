// Linear layer y = x W^T (W [out, in], Hugging Face layout) and its backward pass.
// Shapes: x [T, in], y / dy [T, out]. Backward accumulates (+=) into dx and dW.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"
#include "train/step_profile.h"

namespace dsv3::train {

//! y[T, out] = x[T, in] W^T (overwrites y).
template <class S>
void linear_forward(kernels::Context& ctx, const S* x, int64_t T, const S* W, int64_t out, int64_t in, S* y) {
  const StepScope scope(StepPhase::GemmFprop);
  kernels::gemm<S>(ctx, false, true, T, out, in, x, W, y, false);
}

//! dx[T, in] += dy W; dW[out, in] += dy^T x. Either output may be null (not needed).
template <class S>
void linear_backward(kernels::Context& ctx, const S* x, const S* dy, int64_t T, const S* W, int64_t out, int64_t in,
                     S* dx, S* dW) {
  if (dx) {
    const StepScope scope(StepPhase::GemmDgrad);
    kernels::gemm<S>(ctx, false, false, T, in, out, dy, W, dx, true);
  }
  if (dW) {
    const StepScope scope(StepPhase::GemmWgrad);
    kernels::gemm<S>(ctx, true, false, out, in, T, dy, x, dW, true);
  }
}

}  // namespace dsv3::train
