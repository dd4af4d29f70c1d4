#include "model/moe.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "base/error.h"
#include "kernels/matmul.h"
#include "model/expert_select.h"
#include "model/mlp_batch.h"
#include "model/ops.h"

namespace dsv3::model {

void route_token(const ModelConfig& c, const float* logits, const float* bias, int32_t* idx, float* w) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  std::vector<float> s(logits, logits + E);
  if (c.scoring_func == ScoringFunc::Sigmoid) {
    for (float& v : s) v = ops::sigmoid(v);
  } else {
    ops::softmax(s.data(), E);
  }
  select_experts(c, s.data(), bias, idx);
  float sum = 0;
  for (int64_t k = 0; k < K; ++k) sum += s[idx[k]];
  for (int64_t k = 0; k < K; ++k) {
    float wk = s[idx[k]];  // the unbiased score
    if (c.norm_topk_prob) wk /= sum;
    w[k] = wk * float(c.routed_scaling_factor);
  }
}

void mlp_forward(Workspace& ws, const MlpWeights& m, const float* x, int64_t T, float* out) {
  run_mlps(ws, {MlpTask{&m, x, T, out}});
}

void moe_forward(Workspace& ws, const ModelConfig& c, const MoeWeights& m, const float* x, int64_t T, float* out,
                 RoutingTrace* trace) {
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  PhaseScope router(ws.profile, Phase::Router);
  float* const logits = ws.router.get(size_t(T * E));
  // The router in fp32 in every numerics: expert choice is discrete, and a rounding flip
  // there changes a token's output far more than any GEMM rounding.
  kernels::matmul(ws.kernels, m.gate, x, T, logits, kernels::Numerics::Fp32);
  std::vector<int32_t>& idx = ws.route_idx;
  idx.resize(size_t(T * K));
  float* const w = ws.route_weights.get(size_t(T * K));
  for (int64_t t = 0; t < T; ++t)
    route_token(c, &logits[t * E], m.bias.empty() ? nullptr : m.bias.data(), &idx[t * K], &w[t * K]);
  if (trace) {
    trace->indices.insert(trace->indices.end(), idx.begin(), idx.end());
    trace->weights.insert(trace->weights.end(), w, w + T * K);
  }

  // Group token slots by expert; experts are summed in ascending order, so every token
  // adds its experts in the same order whatever the batch (prefill == decode).
  auto& users = ws.expert_users;
  users.resize(size_t(E));
  for (auto& u : users) u.clear();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) users[idx[t * K + k]].push_back({t, w[t * K + k]});

  // Each chosen expert's tokens, gathered in expert order: the s-th (expert, token) pair is
  // row s of xe and ye.
  float* const xe = ws.expert_in.get(size_t(T * K * D));
  float* const ye = ws.expert_out.get(size_t(T * K * D));
  std::vector<MlpTask> tasks;
  size_t slot = 0;
  for (int64_t e = 0; e < E; ++e) {
    const auto& u = users[size_t(e)];
    if (u.empty()) continue;
    tasks.push_back(MlpTask{&m.experts[size_t(e)], &xe[slot * size_t(D)], int64_t(u.size()), &ye[slot * size_t(D)]});
    for (const auto& [t, wt] : u) std::copy(x + t * D, x + (t + 1) * D, &xe[slot++ * size_t(D)]);
  }
  float* const sh = m.shared ? ws.shared_out.get(size_t(T * D)) : nullptr;
  if (m.shared) tasks.push_back(MlpTask{&*m.shared, x, T, sh});
  const PhaseScope experts(ws.profile, Phase::Experts);
  run_mlps(ws, tasks);

  std::fill(out, out + T * D, 0.0f);
  slot = 0;
  for (const auto& u : users)
    for (const auto& [t, wt] : u) {
      float* o = out + t * D;
      const float* y = &ye[slot++ * size_t(D)];
      for (int64_t d = 0; d < D; ++d) o[d] += wt * y[d];
    }
  if (m.shared)
    for (int64_t i = 0; i < T * D; ++i) out[i] += sh[i];
}

}  // namespace dsv3::model
