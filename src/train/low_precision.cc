#include "train/low_precision.h"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/quant.h"

namespace dsv3::train {
namespace {

using kernels::Numerics;

// Operand arrays kept per thread between calls: a fresh multi-MB vector per GEMM operand
// cost page faults and zeroing every time (the routed experts run on the pool's threads,
// hence per thread). A Scratch takes the smallest kept array that fits and returns it
// when it goes out of scope.
class Scratch {
 public:
  explicit Scratch(size_t n) {
    std::vector<Array>& spare = spare_arrays();
    size_t pick = spare.size();
    for (size_t i = 0; i < spare.size(); ++i)
      if (spare[i].size >= n && (pick == spare.size() || spare[i].size < spare[pick].size)) pick = i;
    if (pick == spare.size()) {
      if (!spare.empty()) spare.erase(spare.begin());  // none fits: it is replaced, so they never pile up
      a_.data.reset(new float[n]);
      a_.size = n;
    } else {
      a_ = std::move(spare[pick]);
      spare.erase(spare.begin() + std::ptrdiff_t(pick));
    }
  }
  Scratch(Scratch&&) = default;
  ~Scratch() {
    if (a_.data) spare_arrays().push_back(std::move(a_));
  }
  float* data() const { return a_.data.get(); }

 private:
  struct Array {
    std::unique_ptr<float[]> data;
    size_t size = 0;
  };
  static std::vector<Array>& spare_arrays() {
    thread_local std::vector<Array> spare;
    return spare;
  }
  Array a_;
};

// x quantized per tile_r x tile_c tile: e4m3 codes and the tiles' scales (kernels/quant.h).
struct Fp8Operand {
  Scratch codes, scales;
  int64_t tile_r, tile_c;
  kernels::Fp8Matrix view() const { return {codes.data(), scales.data(), tile_r, tile_c}; }
};

Fp8Operand fp8_operand(kernels::Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r,
                       int64_t tile_c) {
  const StepScope scope(StepPhase::Quantize);
  Fp8Operand q{Scratch(size_t(rows * cols)), Scratch(size_t(kernels::fp8_scale_count(rows, cols, tile_r, tile_c))),
               tile_r, tile_c};
  kernels::fp8_quant(ctx, x, rows, cols, tile_r, tile_c, q.codes.data(), q.scales.data());
  return q;
}

// A prepared FP8 weight [out, in]: its codes, then its 128x128 blocks' scales.
kernels::Fp8Matrix fp8_weight(const float* W, int64_t out, int64_t in) {
  return {W, W + out * in, kFp8Tile, kFp8Tile};
}

}  // namespace

int64_t prepared_size(int64_t out, int64_t in) {
  return out * in + kernels::fp8_scale_count(out, in, kFp8Tile, kFp8Tile);
}

void prepare_weight(kernels::Context& ctx, const float* W, int64_t out, int64_t in, float* prepared) {
  const StepScope scope(StepPhase::Quantize);
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      std::copy(W, W + out * in, prepared);
      return;
    case Numerics::Bf16:
      return kernels::bf16_fake_round(ctx, W, out * in, prepared);
    case Numerics::Fp8:
      return kernels::fp8_quant(ctx, W, out, in, kFp8Tile, kFp8Tile, prepared, prepared + out * in);
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
    case Numerics::Fp8: {
      const Fp8Operand xq = fp8_operand(ctx, x, T, in, 1, kFp8Tile);
      const StepScope scope(StepPhase::GemmFprop);
      return kernels::gemm_fp8(ctx, false, true, T, out, in, xq.view(), fp8_weight(W, out, in), y, false);
    }
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
      if (dx) {
        const Fp8Operand dyq = fp8_operand(ctx, dy, T, out, 1, kFp8Tile);
        const StepScope scope(StepPhase::GemmDgrad);
        kernels::gemm_fp8(ctx, false, false, T, in, out, dyq.view(), fp8_weight(W, out, in), dx, true);
      }
      if (dW) {
        // x as Fprop quantized it (the report caches that FP8 form), then per 128 tokens.
        const Scratch xf(size_t(T * in));
        {
          const StepScope scope(StepPhase::Quantize);
          kernels::fp8_fake_quant(ctx, x, T, in, 1, kFp8Tile, xf.data());
        }
        const Fp8Operand xq = fp8_operand(ctx, xf.data(), T, in, kFp8Tile, 1);
        const Fp8Operand dyq = fp8_operand(ctx, dy, T, out, kFp8Tile, 1);
        const StepScope scope(StepPhase::GemmWgrad);
        kernels::gemm_fp8(ctx, true, false, out, in, T, dyq.view(), xq.view(), dW, true);
      }
      return;
    }
  }
}

}  // namespace dsv3::train
