#include "train/low_precision.h"

#include <vector>

#include "kernels/quant.h"

namespace dsv3::train {
namespace {

using kernels::Numerics;

std::vector<float> bf16_copy(kernels::Context& ctx, const float* x, int64_t n) {
  std::vector<float> r(static_cast<size_t>(n));
  kernels::bf16_fake_round(ctx, x, n, r.data());
  return r;
}

std::vector<float> fp8_copy(kernels::Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r,
                            int64_t tile_c) {
  std::vector<float> r(static_cast<size_t>(rows * cols));
  kernels::fp8_fake_quant(ctx, x, rows, cols, tile_r, tile_c, r.data());
  return r;
}

}  // namespace

template <>
void block_linear_forward<float>(kernels::Context& ctx, const float* x, int64_t T, const float* W, int64_t out,
                                 int64_t in, float* y) {
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      return linear_forward(ctx, x, T, W, out, in, y);
    case Numerics::Bf16:
      return linear_forward(ctx, bf16_copy(ctx, x, T * in).data(), T, bf16_copy(ctx, W, out * in).data(), out, in, y);
    case Numerics::Fp8:
      return linear_forward(ctx, fp8_copy(ctx, x, T, in, 1, kFp8Tile).data(), T,
                            fp8_copy(ctx, W, out, in, kFp8Tile, kFp8Tile).data(), out, in, y);
  }
}

template <>
void block_linear_backward<float>(kernels::Context& ctx, const float* x, const float* dy, int64_t T, const float* W,
                                  int64_t out, int64_t in, float* dx, float* dW) {
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      return linear_backward(ctx, x, dy, T, W, out, in, dx, dW);
    case Numerics::Bf16: {
      const std::vector<float> dyr = bf16_copy(ctx, dy, T * out);
      if (dx) kernels::gemm<float>(ctx, false, false, T, in, out, dyr.data(), bf16_copy(ctx, W, out * in).data(), dx, true);
      if (dW) kernels::gemm<float>(ctx, true, false, out, in, T, dyr.data(), bf16_copy(ctx, x, T * in).data(), dW, true);
      return;
    }
    case Numerics::Fp8: {
      if (dx)
        kernels::gemm<float>(ctx, false, false, T, in, out, fp8_copy(ctx, dy, T, out, 1, kFp8Tile).data(),
                             fp8_copy(ctx, W, out, in, kFp8Tile, kFp8Tile).data(), dx, true);
      if (dW) {
        // x as Fprop quantized it (the report caches that FP8 form), then per 128 tokens.
        std::vector<float> xq = fp8_copy(ctx, x, T, in, 1, kFp8Tile);
        kernels::fp8_fake_quant(ctx, xq.data(), T, in, kFp8Tile, 1, xq.data());
        kernels::gemm<float>(ctx, true, false, out, in, T, fp8_copy(ctx, dy, T, out, kFp8Tile, 1).data(), xq.data(),
                             dW, true);
      }
      return;
    }
  }
}

}  // namespace dsv3::train
