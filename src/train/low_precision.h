// The Linear layers of the decoder blocks under the run's `precision` (docs/training.md):
// the attention projections (q_a, q_b or q, kv_a, kv_b, o) and every MLP and expert's gate,
// up and down, in the main layers and the MTP block (the tensors FP8 checkpoints store in
// FP8). The context's numerics() chooses:
//  - fp32: linear_forward / linear_backward as they are (the exact reference);
//  - bf16: all three GEMMs (Fprop, Dgrad, Wgrad) take BF16-rounded inputs, fp32 sums;
//  - fp8: the DeepSeek-V3 report's recipe (§3.3): e4m3 inputs with fine-grained scales
//    (kernels/quant.h: fp8_quant), multiplied by the FP8 GEMM (kernels/gemm.h: gemm_fp8), which
//    sums each 128-element block of the reduction in fp32 and adds it to the output times
//    its two scales, as the report promotes partial sums. Fprop: x per 1x128 tile (token, 128
//    input channels), W per 128x128 block. Dgrad: dy per 1x128 tile along the output
//    channels, W as in Fprop. Wgrad: dy per 128x1 tile (128 tokens of one channel), and x as
//    the report caches it: its 1x128-quantized Fprop form, requantized per 128x1 tile along
//    the tokens.
// The output heads and the MTP module's eh_proj (outer_linear_*) are what the report keeps in
// "the original precision (e.g., BF16 or FP32)" of its BF16 baseline: in bf16 and fp8 modes
// they take BF16 inputs with fp32 sums (kernels::gemm_bf16). The embedding, the MoE router,
// norms and the attention core stay fp32, and so do the master weights and their gradients.
// The weights come prepared (prepare_weight, once per step by the model): W below is
// already in the mode's form. bf16 runs kernels::gemm_bf16, which rounds its inputs as it
// packs them. Both low-precision GEMMs run vdpbf16ps where the CPU has AVX512_BF16 (e4m3 and
// BF16 products are exact in fp32) and give the same bits on every SIMD tier (kernels/gemm.h
// says where they may not).
// double (the finite-difference checks) always runs fp32.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "train/linear_grad.h"

namespace dsv3::train {

//! A Linear input kept in FP8 for the backward pass, as the report caches Linear inputs
//! (§3.3): the e4m3 codes its Fprop multiplied (1x128 tiles: one token, 128 channels), one
//! byte each (kernels::e4m3_to_bytes), and the tiles' scales: about a quarter of the fp32
//! bytes. Codes x scales are the values Fprop multiplied, which is what Wgrad starts from in
//! fp8 mode anyway.
struct Fp8Input {
  std::vector<uint8_t> bytes;  // [rows, cols]
  std::vector<float> scales;   // [rows][ceil(cols / 128)]
  int64_t rows = 0, cols = 0;
};

//! What a Linear layer's Fprop and Wgrad read as its input: the activation itself, or its
//! FP8 form.
template <class S>
struct LinearInput {
  LinearInput(const S* activation) : x(activation) {}  // NOLINT: an activation is an input
  LinearInput(const Fp8Input& kept) : fp8(&kept) {}     // NOLINT
  const S* x = nullptr;
  const Fp8Input* fp8 = nullptr;
};

//! The bytes of the given vectors' elements: what a state keeps for the backward pass.
template <class... V>
size_t bytes_of(const V&... v) {
  return (size_t(0) + ... + (v.size() * sizeof(typename V::value_type)));
}

//! LinearInput<S> in a parameter whose S the other arguments give, so an activation pointer
//! converts to it.
template <class S>
using InputOf = std::type_identity_t<LinearInput<S>>;

//! One Linear input [rows, cols] kept for the backward pass. fp32 and bf16 modes keep the
//! activation (`x`). fp8 mode keeps its FP8 form (`fp8`): the activation is computed in the
//! context's scratch, valid from buffer() to seal() (the next KeptInput of the context reuses
//! it), and the Linear layers read the FP8 form. `keep_fp32` keeps the activation in every
//! mode, for an input that more than Linear layers read (the MoE router's).
template <class S>
struct KeptInput {
  std::vector<S> x;
  Fp8Input fp8;
  //! The array to compute the activation into.
  S* buffer(kernels::Context& ctx, int64_t rows, int64_t cols, bool keep_fp32 = false);
  //! Once the activation is complete: fp8 mode makes the FP8 form; the buffer is gone.
  void seal(kernels::Context& ctx);
  //! What the Linear layers read.
  LinearInput<S> input() const {
    if (in_fp8_) return LinearInput<S>(fp8);
    return LinearInput<S>(x.data());
  }
  //! The activation itself, for readers other than Linear layers (buffer()'s keep_fp32).
  const S* fp32() const;
  //! The bytes kept.
  size_t bytes() const {
    return in_fp8_ ? fp8.bytes.size() + fp8.scales.size() * sizeof(float) : x.size() * sizeof(S);
  }

 private:
  bool in_fp8_ = false;
};

//! The floats a prepared weight [out, in] takes: out x in, and in fp8 mode its blocks' scales.
int64_t prepared_size(int64_t out, int64_t in);
//! W [out, in] in the context's numerics' form: BF16-rounded; in fp8 its e4m3 codes per
//! 128x128 block [out, in] followed by the blocks' scales [ceil(out / 128)][ceil(in / 128)];
//! copied as is in fp32. prepared (prepared_size floats) may not be W.
void prepare_weight(kernels::Context& ctx, const float* W, int64_t out, int64_t in, float* prepared);

//! y[T, out] = x W^T in the context's numerics (overwrites y); W prepared.
template <class S>
void block_linear_forward(kernels::Context& ctx, const InputOf<S>& x, int64_t T, const S* W, int64_t out, int64_t in,
                          S* y) {
  linear_forward(ctx, x.x, T, W, out, in, y);
}
//! dx += dy W; dW += dy^T x in the context's numerics (W prepared); either output may be null.
template <class S>
void block_linear_backward(kernels::Context& ctx, const InputOf<S>& x, const S* dy, int64_t T, const S* W,
                           int64_t out, int64_t in, S* dx, S* dW) {
  linear_backward(ctx, x.x, dy, T, W, out, in, dx, dW);
}

template <>
void block_linear_forward<float>(kernels::Context& ctx, const LinearInput<float>& x, int64_t T, const float* W,
                                 int64_t out, int64_t in, float* y);
template <>
void block_linear_backward<float>(kernels::Context& ctx, const LinearInput<float>& x, const float* dy, int64_t T,
                                  const float* W, int64_t out, int64_t in, float* dx, float* dW);

//! The output heads and eh_proj: y = x W^T, and dx += dy W; dW += dy^T x (either may be
//! null), in fp32 in fp32 mode and with BF16 inputs in bf16 and fp8 modes. W as stored.
void outer_linear_forward(kernels::Context& ctx, const float* x, int64_t T, const float* W, int64_t out, int64_t in,
                          float* y);
void outer_linear_backward(kernels::Context& ctx, const float* x, const float* dy, int64_t T, const float* W,
                           int64_t out, int64_t in, float* dx, float* dW);

//! The tile edge of the FP8 recipe's scales.
constexpr int64_t kFp8Tile = 128;

}  // namespace dsv3::train
