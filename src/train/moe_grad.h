// SwiGLU MLP and DeepSeekMoE (sigmoid scoring, noaux_tc / group-limited selection, shared
// experts) for training, with the sequence-wise balance loss. Shapes: x / out [T, hidden].
// The gate bias (e_score_correction_bias) only selects experts: it gets no gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/context.h"
#include "model/config.h"
#include "model/expert_select.h"
#include "train/low_precision.h"

namespace dsv3::train {

//! SwiGLU weights (or their gradients): gate/up [inter, hidden], down [hidden, inter].
template <class S>
struct MlpTensors {
  S *gate = nullptr, *up = nullptr, *down = nullptr;
};

template <class S>
struct MlpState {
  std::vector<S> g, u;  // gate(x), up(x): [T, inter]
  KeptInput<S> a;       // down's input silu(g) * u
  size_t bytes() const { return bytes_of(g, u) + a.bytes(); }
};

//! out[T, D] = down(silu(gate(x)) * up(x)).
template <class S>
void mlp_forward(kernels::Context& ctx, const MlpTensors<S>& w, int64_t D, int64_t inter, const InputOf<S>& x,
                 int64_t T, MlpState<S>& st, S* out);
//! dx += d/dx, g.* += d/dW (null gradients skipped).
template <class S>
void mlp_backward(kernels::Context& ctx, const MlpTensors<S>& w, int64_t D, int64_t inter, const InputOf<S>& x,
                  int64_t T, const MlpState<S>& st, const S* dout, S* dx, const MlpTensors<S>& g);

template <class S>
struct MoeTensors {
  S* gate = nullptr;                   // [E, hidden]
  std::vector<MlpTensors<S>> experts;  // E of them
  MlpTensors<S> shared;                // null when n_shared_experts is 0
};

template <class S>
struct MoeState {
  std::vector<S> s;                        // sigmoid gate scores [T, E]
  std::vector<int32_t> idx;                // chosen experts [T, K], ascending
  std::vector<S> w;                        // mixing weights [T, K] (routed_scaling_factor included)
  std::vector<std::vector<int64_t>> rows;  // per expert: the (t*K + k) slots routed to it
  std::vector<KeptInput<S>> xe;            // per expert: its gathered inputs
  std::vector<std::vector<S>> ye;          // and its outputs
  std::vector<MlpState<S>> est;
  MlpState<S> shared;
  std::vector<int64_t> load;  // per expert: tokens routed
  size_t bytes() const {
    size_t n = bytes_of(s, idx, w, load) + shared.bytes();
    for (size_t e = 0; e < xe.size(); ++e) n += bytes_of(rows[e], ye[e]) + xe[e].bytes() + est[e].bytes();
    return n;
  }
};

//! Expert choice is the inference engine's own (model/expert_select.h).
using model::select_experts;

//! out = MoE(x). bias: e_score_correction_bias [E] or null. Only sigmoid scoring.
template <class S>
void moe_forward(kernels::Context& ctx, const model::ModelConfig& c, const MoeTensors<S>& w, const float* bias,
                 const S* x, int64_t T, MoeState<S>& st, S* out);

//! The sequence-wise balance term sum_i f_i P_i of one layer (no alpha).
template <class S>
double moe_balance(const model::ModelConfig& c, const MoeState<S>& st, int64_t T);

//! Backward of out (upstream dout) plus balance_scale * moe_balance(): dx += d/dx,
//! g.* += d/dW.
template <class S>
void moe_backward(kernels::Context& ctx, const model::ModelConfig& c, const MoeTensors<S>& w, const S* x, int64_t T,
                  const MoeState<S>& st, const S* dout, double balance_scale, S* dx, const MoeTensors<S>& g);

}  // namespace dsv3::train
