// DeepSeekMoE: expert routing (noaux_tc for V3; greedy / group_limited_greedy for V2) and
// the mixture of routed SwiGLU experts plus always-on shared experts.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/expert_host.h"
#include "model/mlp_batch.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3::model {

//! Per-token routing decisions of one MoE layer: chosen experts sorted ascending, weights
//! aligned with them (the final mixing weights, routed_scaling_factor included).
struct RoutingTrace {
  int64_t layer = 0;
  std::vector<int32_t> indices;  // [T, k]
  std::vector<float> weights;    // [T, k]
};

//! Routes one token from its gate logits [n_routed_experts]. Writes the chosen experts
//! sorted ascending to idx[k] and their mixing weights to w[k] (k = num_experts_per_tok).
//! `bias` is e_score_correction_bias (noaux_tc) or nullptr: it only selects, never weights.
//! Ties go to the lower expert (and group) index.
void route_token(const ModelConfig& c, const float* logits, const float* bias, int32_t* idx, float* w);

//! x: [T, hidden] (post-attention-normed); out: [T, hidden]. Tokens are grouped by expert
//! so each chosen expert runs once over all of its tokens; unchosen experts are skipped.
//! `layer` is the block's index (num_hidden_layers for the MTP block). With a `host`, the
//! experts it places elsewhere run there while this process runs its own (expert_host.h).
//! When `trace` is set, the layer's decisions are appended to it.
void moe_forward(Workspace& ws, const ModelConfig& c, const MoeWeights& m, int64_t layer, ExpertHost* host,
                 const float* x, int64_t T, float* out, RoutingTrace* trace);

//! The token slots of routing decisions idx [T, k], grouped by expert: used experts
//! ascending, each with its tokens ascending and consecutive slots from 0.
std::vector<ExpertRows> group_by_expert(const int32_t* idx, int64_t T, int64_t K, int64_t E);

//! Runs routed experts of `m` over rows of x [*, hidden] (ExpertRows::tokens index x) into
//! ye at their slots, with `extra` (the shared experts) in the same two pool jobs. What
//! moe_forward runs locally and what an expert-parallel rank runs for another.
void run_experts(Workspace& ws, const MoeWeights& m, const float* x, int64_t hidden,
                 const std::vector<ExpertRows>& experts, float* ye, const MlpTask* extra = nullptr);

//! SwiGLU MLP: out[T, hidden] = down(silu(gate(x)) * up(x)).
void mlp_forward(Workspace& ws, const MlpWeights& m, const float* x, int64_t T, float* out);

}  // namespace dsv3::model
