// Multi-head latent attention for training: the naive (expanded K/V) form over a whole
// sequence at positions 0..T-1, with the activations the backward pass needs.
// Shapes: x / out [T, hidden]; q [T, H, nope|rope]; latent [T, kv_lora | rope];
// kv [T, H, nope|v]; per head and row the log-sum-exp of the scaled scores [H, T] (the
// backward pass recomputes the probabilities from it, so no [T, T] matrix is ever kept).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/context.h"
#include "model/config.h"
#include "train/low_precision.h"

namespace dsv3::train {

//! Weights (read) or their gradients (accumulated; null entries are skipped). With
//! q_lora_rank > 0 q_a / q_a_norm / q_b are used, otherwise q.
template <class S>
struct MlaTensors {
  S *q_a = nullptr, *q_a_norm = nullptr, *q_b = nullptr, *q = nullptr;
  S *kv_a = nullptr, *kv_a_norm = nullptr, *kv_b = nullptr, *o = nullptr;
};

template <class S>
struct MlaState {
  std::vector<S> qa, qa_rstd;  // q-LoRA: q_a(x) and its rstd
  KeptInput<S> qa_n;           // q_b's input: q_a(x) normed
  std::vector<S> q;            // queries, rope part rotated
  std::vector<S> kva;          // kv_a(x) with the rope key rotated in place
  std::vector<S> c_rstd;       // kv_a_layernorm over the kv_lora part
  KeptInput<S> c;              // kv_b's input: the normed latent
  std::vector<S> kv;           // kv_b(c)
  std::vector<S> lse;          // [H, T] log-sum-exp of each row's scaled, causal scores
  std::vector<S> attn;         // [T, H, v] before o_proj
  size_t bytes() const { return bytes_of(qa, qa_rstd, q, kva, c_rstd, kv, lse, attn) + qa_n.bytes() + c.bytes(); }
};

//! out[T, hidden] = MLA(x). `freqs` are model::ModelConfig::rope_frequencies().
template <class S>
void mla_forward(kernels::Context& ctx, const model::ModelConfig& c, const MlaTensors<S>& w,
                 const std::vector<double>& freqs, const InputOf<S>& x, int64_t T, MlaState<S>& st, S* out);

//! dx += d/dx and weight gradients += d/dW for upstream dout [T, hidden].
template <class S>
void mla_backward(kernels::Context& ctx, const model::ModelConfig& c, const MlaTensors<S>& w,
                  const std::vector<double>& freqs, const InputOf<S>& x, int64_t T, const MlaState<S>& st,
                  const S* dout, S* dx, const MlaTensors<S>& g);

}  // namespace dsv3::train
