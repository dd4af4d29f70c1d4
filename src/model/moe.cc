#include "model/moe.h"

#include <algorithm>
#include <numeric>
#include <tuple>
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

std::vector<ExpertRows> group_by_expert(const int32_t* idx, int64_t T, int64_t K, int64_t E) {
  std::vector<std::vector<int64_t>> users(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) users[size_t(idx[t * K + k])].push_back(t);
  std::vector<ExpertRows> out;
  int64_t slot = 0;
  for (int64_t e = 0; e < E; ++e) {
    if (users[size_t(e)].empty()) continue;
    out.push_back(ExpertRows{int32_t(e), slot, std::move(users[size_t(e)])});
    slot += int64_t(out.back().tokens.size());
  }
  return out;
}

void run_experts(Workspace& ws, const MoeWeights& m, const float* x, int64_t D, const std::vector<ExpertRows>& experts,
                 float* ye, const MlpTask* extra) {
  int64_t slots = 0;
  for (const ExpertRows& r : experts) slots = std::max(slots, r.slot0 + int64_t(r.tokens.size()));
  float* const xe = ws.expert_in.get(size_t(slots * D));
  std::vector<MlpTask> tasks;
  for (const ExpertRows& r : experts) {
    if (size_t(r.expert) >= m.experts.size() || m.experts[size_t(r.expert)].gate.empty())
      fail("routed expert ", r.expert, " is not loaded in this process");
    float* in = &xe[size_t(r.slot0 * D)];
    for (size_t i = 0; i < r.tokens.size(); ++i)
      std::copy(x + r.tokens[i] * D, x + (r.tokens[i] + 1) * D, in + i * size_t(D));
    tasks.push_back(MlpTask{&m.experts[size_t(r.expert)], in, int64_t(r.tokens.size()), &ye[size_t(r.slot0 * D)]});
  }
  if (extra) tasks.push_back(*extra);
  run_mlps(ws, tasks);
}

void moe_forward(Workspace& ws, const ModelConfig& c, const MoeWeights& m, int64_t layer, ExpertHost* host,
                 const float* x, int64_t T, float* out, RoutingTrace* trace) {
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

  // Token slots grouped by expert; experts are summed in ascending order, so every token
  // adds its experts in the same order whatever the batch (prefill == decode) and wherever
  // they ran. The s-th (expert, token) pair is row s of the gathered outputs.
  std::vector<ExpertRows> groups = group_by_expert(idx.data(), T, K, E);
  std::vector<std::tuple<int64_t, float, int64_t>> mix;  // (token, weight, slot) in slot order
  mix.reserve(size_t(T * K));
  for (const ExpertRows& g : groups)
    for (size_t i = 0; i < g.tokens.size(); ++i) {
      const int64_t t = g.tokens[i];
      const int32_t* row = &idx[size_t(t * K)];
      const int64_t k = std::find(row, row + K, g.expert) - row;
      mix.emplace_back(t, w[t * K + k], g.slot0 + int64_t(i));
    }
  float* const ye = ws.expert_out.get(size_t(T * K * D));
  std::vector<ExpertRows> local, remote;
  if (host) {
    std::vector<std::pair<int32_t, int64_t>> used;
    for (const ExpertRows& g : groups) used.emplace_back(g.expert, int64_t(g.tokens.size()));
    const std::vector<bool> here = host->place(layer, used);
    for (size_t i = 0; i < groups.size(); ++i) (here[i] ? local : remote).push_back(groups[i]);
    if (!remote.empty()) host->dispatch(layer, ws.kernels.numerics(), x, T, D, remote);
  } else {
    local = std::move(groups);
  }
  float* const sh = m.shared ? ws.shared_out.get(size_t(T * D)) : nullptr;
  const MlpTask shared_task{m.shared ? &*m.shared : nullptr, x, T, sh};
  {
    const PhaseScope experts(ws.profile, Phase::Experts);
    try {
      run_experts(ws, m, x, D, local, ye, m.shared ? &shared_task : nullptr);
    } catch (...) {
      if (!remote.empty()) host->collect(ye, D);  // take the other ranks' answers, so the next step starts in step
      throw;
    }
    if (!remote.empty()) host->collect(ye, D);
  }

  std::fill(out, out + T * D, 0.0f);
  for (const auto& [t, wt, slot] : mix) {
    float* o = out + t * D;
    const float* y = &ye[slot * D];
    for (int64_t d = 0; d < D; ++d) o[d] += wt * y[d];
  }
  if (m.shared)
    for (int64_t i = 0; i < T * D; ++i) out[i] += sh[i];
}
}  // namespace dsv3::model
