#include "train/low_precision.h"

#include <algorithm>

#include "base/error.h"
#include "kernels/gemm.h"
#include "kernels/quant.h"

namespace dsv3::train {
namespace {

using kernels::Numerics;

// x quantized per tile_r x tile_c tile: e4m3 codes and the tiles' scales (kernels/quant.h),
// in two of the context's operand buffers (fresh multi-MB vectors per GEMM cost page faults
// and zeroing every time). Slots: an operand takes `slot` and `slot + 1`.
struct Fp8Operand {
  float *codes, *scales;
  int64_t tile_r, tile_c;
  kernels::Fp8Matrix view() const { return {codes, scales, tile_r, tile_c}; }
};

// The slots of the operands alive at once: x or dy in Fprop and Dgrad (a kept input's bytes
// go to the GEMM as they are); in Wgrad x's fake quantization, then x and dy per 128x1 tile;
// and the scratch a KeptInput computes its activation in, in fp8 mode (KeptInput::seal
// quantizes it straight to bytes).
enum Slot { kFirst = 0, kSecond = 2, kFakeX = 4, kInput = 5 };
static_assert(kInput < kernels::Context::kOperandSlots);

Fp8Operand fp8_operand(kernels::Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r,
                       int64_t tile_c, int slot) {
  const StepScope scope(StepPhase::Quantize);
  Fp8Operand q{ctx.operand(slot, size_t(rows * cols)),
               ctx.operand(slot + 1, size_t(kernels::fp8_scale_count(rows, cols, tile_r, tile_c))), tile_r, tile_c};
  kernels::fp8_quant(ctx, x, rows, cols, tile_r, tile_c, q.codes, q.scales);
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

template <class S>
S* KeptInput<S>::buffer(kernels::Context& ctx, int64_t rows, int64_t cols, bool keep_fp32) {
  in_fp8_ = std::is_same_v<S, float> && ctx.numerics() == Numerics::Fp8 && !keep_fp32;
  fp8.rows = rows;
  fp8.cols = cols;
  if (!in_fp8_) {
    fp8.bytes.clear();
    fp8.scales.clear();
    x.resize(size_t(rows * cols));
    return x.data();
  }
  x.clear();
  x.shrink_to_fit();  // an earlier step in another mode may have kept it
  fp8.bytes.resize(size_t(rows * cols));
  fp8.scales.resize(size_t(kernels::fp8_scale_count(rows, cols, 1, kFp8Tile)));
  if constexpr (std::is_same_v<S, float>) return ctx.operand(kInput, size_t(rows * cols));
  return nullptr;  // unreachable: only float runs fp8
}

template <class S>
const S* KeptInput<S>::fp32() const {
  DSV3_CHECK(!in_fp8_, "a Linear input kept in FP8 has no fp32 activation (buffer()'s keep_fp32)");
  return x.data();
}

template <class S>
void KeptInput<S>::seal(kernels::Context& ctx) {
  if (!in_fp8_) return;
  if constexpr (std::is_same_v<S, float>) {
    const StepScope scope(StepPhase::Quantize);
    const float* const activation = ctx.operand(kInput, fp8.bytes.size());  // buffer()'s scratch
    kernels::fp8_quant_bytes(ctx, activation, fp8.rows, fp8.cols, 1, kFp8Tile, fp8.bytes.data(), fp8.scales.data());
  }
}

template struct KeptInput<float>;
template struct KeptInput<double>;

template <>
void block_linear_forward<float>(kernels::Context& ctx, const LinearInput<float>& x, int64_t T, const float* W,
                                 int64_t out, int64_t in, float* y) {
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      return linear_forward(ctx, x.x, T, W, out, in, y);
    case Numerics::Bf16:  // W is already BF16: the GEMM's rounding leaves it as it is
      return outer_linear_forward(ctx, x.x, T, W, out, in, y);
    case Numerics::Fp8: {
      kernels::Fp8Matrix xq;
      if (x.fp8) {  // kept: the GEMM packs its bytes as they are
        xq = {nullptr, x.fp8->scales.data(), 1, kFp8Tile, x.fp8->bytes.data()};
      } else {
        xq = fp8_operand(ctx, x.x, T, in, 1, kFp8Tile, kFirst).view();
      }
      const StepScope scope(StepPhase::GemmFprop);
      return kernels::gemm_fp8(ctx, false, true, T, out, in, xq, fp8_weight(W, out, in), y, false);
    }
  }
}

template <>
void block_linear_backward<float>(kernels::Context& ctx, const LinearInput<float>& x, const float* dy, int64_t T,
                                  const float* W, int64_t out, int64_t in, float* dx, float* dW) {
  switch (ctx.numerics()) {
    case Numerics::Fp32:
      return linear_backward<float>(ctx, x.x, dy, T, W, out, in, dx, dW);
    case Numerics::Bf16:
      return outer_linear_backward(ctx, x.x, dy, T, W, out, in, dx, dW);
    case Numerics::Fp8: {
      if (dx) {
        const Fp8Operand dyq = fp8_operand(ctx, dy, T, out, 1, kFp8Tile, kFirst);
        const StepScope scope(StepPhase::GemmDgrad);
        kernels::gemm_fp8(ctx, false, false, T, in, out, dyq.view(), fp8_weight(W, out, in), dx, true);
      }
      if (dW) {
        // x as Fprop quantized it (the report caches that FP8 form), then per 128 tokens.
        float* const xf = ctx.operand(kFakeX, size_t(T * in));
        {
          const StepScope scope(StepPhase::Quantize);
          if (x.fp8) {
            kernels::fp8_dequant(ctx, x.fp8->bytes.data(), x.fp8->scales.data(), T, in, 1, kFp8Tile, xf);
          } else {
            kernels::fp8_fake_quant(ctx, x.x, T, in, 1, kFp8Tile, xf);
          }
        }
        const Fp8Operand xq = fp8_operand(ctx, xf, T, in, kFp8Tile, 1, kFirst);
        const Fp8Operand dyq = fp8_operand(ctx, dy, T, out, kFp8Tile, 1, kSecond);
        const StepScope scope(StepPhase::GemmWgrad);
        kernels::gemm_fp8(ctx, true, false, out, in, T, dyq.view(), xq.view(), dW, true);
      }
      return;
    }
  }
}

}  // namespace dsv3::train
