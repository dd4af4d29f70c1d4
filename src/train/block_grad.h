// One pre-norm decoder block (RMSNorm -> MLA -> residual, RMSNorm -> dense MLP or MoE ->
// residual) for training, at positions 0..T-1. h is [T, hidden].
#pragma once

#include <cstdint>
#include <vector>

#include "train/mla_grad.h"
#include "train/moe_grad.h"

namespace dsv3::train {

//! Weights or gradients of one block (null gradient entries are skipped).
template <class S>
struct BlockTensors {
  S *attn_norm = nullptr, *mlp_norm = nullptr;
  MlaTensors<S> attn;
  bool moe = false;
  MlpTensors<S> dense;
  MoeTensors<S> experts;
};

template <class S>
struct BlockState {
  std::vector<S> h_in, r1, h_mid, r2;  // block input, attn_norm's rstd, after attention, mlp_norm's rstd
  KeptInput<S> x1, x2;                 // the normed inputs of the attention and the MLP / MoE
  MlaState<S> attn;
  MlpState<S> mlp;
  MoeState<S> moe;
  //! What the block keeps for its backward pass.
  size_t bytes() const {
    return bytes_of(h_in, r1, h_mid, r2) + x1.bytes() + x2.bytes() + attn.bytes() + mlp.bytes() + moe.bytes();
  }
};

//! h += MLA(norm(h)); h += MLP/MoE(norm(h)), saving what the backward needs in st.
//! bias: the MoE layer's e_score_correction_bias or null.
template <class S>
void block_forward(kernels::Context& ctx, const model::ModelConfig& c, const BlockTensors<S>& w, const float* bias,
                   const std::vector<double>& freqs, S* h, int64_t T, BlockState<S>& st);

//! dh: upstream gradient of the block output in, gradient of its input out. balance_scale
//! weights the MoE balance term (0 for none).
template <class S>
void block_backward(kernels::Context& ctx, const model::ModelConfig& c, const BlockTensors<S>& w,
                    const std::vector<double>& freqs, int64_t T, const BlockState<S>& st, double balance_scale, S* dh,
                    const BlockTensors<S>& g);

}  // namespace dsv3::train
