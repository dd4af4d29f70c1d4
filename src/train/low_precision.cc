#include "train/low_precision.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/quant.h"

namespace dsv3::train {
namespace {

using kernels::Numerics;

std::vector<float> fp8_copy(kernels::Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r,
                            int64_t tile_c) {
  const StepScope scope(StepPhase::Quantize);
  std::vector<float> r(static_cast<size_t>(rows * cols));
  kernels::fp8_fake_quant(ctx, x, rows, cols, tile_r, tile_c, r.data());
  return r;
}

}  // namespace

void prepare_weight(kernels::Context& ctx, const float* W, int64_t out, int64_t in, float* prepared) {
  const StepScope scope(StepPhase::Quantize);
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      std::copy(W, W + out * in, prepared);
      return;
    case Numerics::Bf16:
      return kernels::bf16_fake_round(ctx, W, out * in, prepared);
    case Numerics::Fp8:
      return kernels::fp8_fake_quant(ctx, W, out, in, kFp8Tile, kFp8Tile, prepared);
  }
}

void outer_linear_forward(kernels::Context& ctx, const float* x, int64_t T, const float* W, int64_t out, int64_t in,
                          float* y) {
  if (ctx.numerics() == Numerics::Fp32) return linear_forward(ctx, x, T, W, out, in, y);
  const StepScope scope(StepPhase::GemmFprop);
  kernels::gemm_bf16(ctx, false, true, T, out, in, x, W, y, false);
}

void outer_linear_backward(kernels::Context& ctx, const float* x, const float* dy, int64_t T, const float* W,
                           int64_t out, int64_t in, float* dx, float* dW) {
  if (ctx.numerics() == Numerics::Fp32) return linear_backward<float>(ctx, x, dy, T, W, out, in, dx, dW);
  if (dx) {
    const StepScope scope(StepPhase::GemmDgrad);
    kernels::gemm_bf16(ctx, false, false, T, in, out, dy, W, dx, true);
  }
  if (dW) {
    const StepScope scope(StepPhase::GemmWgrad);
    kernels::gemm_bf16(ctx, true, false, out, in, T, dy, x, dW, true);
  }
}

template <>
void block_linear_forward<float>(kernels::Context& ctx, const float* x, int64_t T, const float* W, int64_t out,
                                 int64_t in, float* y) {
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      return linear_forward(ctx, x, T, W, out, in, y);
    case Numerics::Bf16:  // W is already BF16: the GEMM's rounding leaves it as it is
      return outer_linear_forward(ctx, x, T, W, out, in, y);
    case Numerics::Fp8:
      return linear_forward(ctx, fp8_copy(ctx, x, T, in, 1, kFp8Tile).data(), T, W, out, in, y);
  }
}

template <>
void block_linear_backward<float>(kernels::Context& ctx, const float* x, const float* dy, int64_t T, const float* W,
                                  int64_t out, int64_t in, float* dx, float* dW) {
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      return linear_backward<float>(ctx, x, dy, T, W, out, in, dx, dW);
    case Numerics::Bf16:
      return outer_linear_backward(ctx, x, dy, T, W, out, in, dx, dW);
    case Numerics::Fp8: {
      if (dx)
        linear_backward<float>(ctx, x, fp8_copy(ctx, dy, T, out, 1, kFp8Tile).data(), T, W, out, in, dx, nullptr);
      if (dW) {
        // x as Fprop quantized it (the report caches that FP8 form), then per 128 tokens.
        std::vector<float> xq = fp8_copy(ctx, x, T, in, 1, kFp8Tile);
        {
          const StepScope scope(StepPhase::Quantize);
          kernels::fp8_fake_quant(ctx, xq.data(), T, in, kFp8Tile, 1, xq.data());
        }
        linear_backward<float>(ctx, xq.data(), fp8_copy(ctx, dy, T, out, kFp8Tile, 1).data(), T, W, out, in, nullptr, dW);
      }
      return;
    }
  }
}

}  // namespace dsv3::train
