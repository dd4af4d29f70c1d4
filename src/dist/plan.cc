#include "dist/plan.h"

#include <algorithm>
#include <cmath>

namespace dsv3::dist {
namespace {

// C(n, k) as a double (the ratios below stay well within range).
double choose(int64_t n, int64_t k) {
  if (k < 0 || n < k) return 0;
  double r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * double(n - k + i) / double(i);
  return r;
}

// Calls f(groups) for every set of `pick` groups out of `n` (as a bit mask), in order.
template <class F>
void each_subset(int64_t n, int64_t pick, F&& f) {
  std::vector<int64_t> idx(static_cast<size_t>(pick));
  for (int64_t i = 0; i < pick; ++i) idx[size_t(i)] = i;
  for (;;) {
    f(idx);
    int64_t i = pick - 1;
    while (i >= 0 && idx[size_t(i)] == n - pick + i) --i;
    if (i < 0) return;
    ++idx[size_t(i)];
    for (int64_t j = i + 1; j < pick; ++j) idx[size_t(j)] = idx[size_t(j - 1)] + 1;
  }
}

}  // namespace

TensorBytes estimated_bytes(const model::ModelConfig& c) {
  return [&c](const model::TensorSpec& s) -> uint64_t {
    const uint64_t n = s.numel();
    if (c.quantization && s.fp8_eligible && s.shape.size() == 2) {
      const uint64_t br = uint64_t(c.quantization->block_rows), bc = uint64_t(c.quantization->block_cols);
      const uint64_t blocks = (uint64_t(s.shape[0]) + br - 1) / br * ((uint64_t(s.shape[1]) + bc - 1) / bc);
      return n + 4 * blocks;
    }
    return 2 * n;
  };
}

TensorBytes checkpoint_bytes(const io::Checkpoint& ck, const model::ModelConfig& c) {
  return [&ck, est = estimated_bytes(c)](const model::TensorSpec& s) -> uint64_t {
    const io::TensorRef* t = ck.find(s.name);
    if (!t) return est(s);
    const io::TensorRef* scale = ck.find(s.name + "_scale_inv");
    return t->info->nbytes() + (scale ? scale->info->nbytes() : 0);
  };
}

EpPlan make_plan(const model::ModelConfig& c, const ExpertPlacement& p, const TensorBytes& bytes, bool mtp) {
  EpPlan plan;
  plan.ranks = p.ranks();
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok, D = c.hidden_size;
  plan.per_rank.resize(size_t(p.ranks()));
  for (int r = 0; r < p.ranks(); ++r) plan.per_rank[size_t(r)].rank = r;
  int64_t expert_tensors = 0;
  for (const model::TensorSpec& s : model::tensor_table(c)) {
    if (s.tied()) continue;  // the MTP layer's copies: not read when tied (counted once)
    if (s.mtp && !mtp) continue;
    const uint64_t b = bytes(s);
    plan.total_bytes += b;
    if (s.kind == model::TensorKind::Embed) plan.embed_bytes += b;
    if (s.owner != model::MlpOwner::Expert) {
      plan.replicated_bytes += b;
      if (s.mtp) plan.mtp_replicated_bytes += b;
      continue;
    }
    plan.routed_bytes += b;
    ++expert_tensors;
    for (int r : p.holders(s.layer, s.expert)) plan.per_rank[size_t(r)].bytes += b;
  }
  plan.per_rank[0].bytes += plan.replicated_bytes;
  const int64_t experts_total = expert_tensors / 3;
  plan.expert_bytes = experts_total ? double(plan.routed_bytes) / double(experts_total) : 0;
  for (int r = 0; r < p.ranks(); ++r) plan.per_rank[size_t(r)].experts = p.held_by(r);
  for (int64_t l : p.layers())
    if (l < c.num_hidden_layers) ++plan.moe_layers;
  if (E == 0 || plan.moe_layers == 0) return plan;

  // Expected slots and touch probability per rank, averaged over the main MoE layers; a
  // copied expert counts for the first rank holding it (place() prefers the lowest rank
  // when all have equal rows, as in decode).
  const int64_t G = std::max<int64_t>(c.n_group, 1), keep = (c.n_group > 1) ? std::min(c.topk_group, G) : G;
  const int64_t per_group = E / G;
  std::vector<double> slots(size_t(p.ranks()), 0), touched(size_t(p.ranks()), 0);
  for (int64_t l : p.layers()) {
    if (l >= c.num_hidden_layers) continue;
    double subsets = 0;
    each_subset(G, keep, [&](const std::vector<int64_t>& groups) {
      subsets += 1;
      const int64_t pool = int64_t(groups.size()) * per_group;
      std::vector<int64_t> held(size_t(p.ranks()), 0);
      for (int64_t g : groups)
        for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) ++held[size_t(p.holders(l, e).at(0))];
      for (int r = 0; r < p.ranks(); ++r) {
        slots[size_t(r)] += double(K) * double(held[size_t(r)]) / double(pool);
        touched[size_t(r)] += 1 - choose(pool - held[size_t(r)], K) / choose(pool, K);
      }
    });
    for (int r = 0; r < p.ranks(); ++r) {
      plan.per_rank[size_t(r)].slots_per_token += slots[size_t(r)] / subsets / double(plan.moe_layers);
      plan.per_rank[size_t(r)].touched += touched[size_t(r)] / subsets / double(plan.moe_layers);
    }
    std::fill(slots.begin(), slots.end(), 0);
    std::fill(touched.begin(), touched.end(), 0);
  }
  // Per follower: its rows (4*D each) and header (56 bytes, 24 per expert and token), and
  // the expert outputs back (4*D per slot). protocol.h has the layout.
  for (int r = 1; r < p.ranks(); ++r) {
    const RankPlan& rp = plan.per_rank[size_t(r)];
    plan.dispatch_bytes += rp.touched * (4.0 * double(D) + 56) + 24.0 * rp.slots_per_token;
    plan.combine_bytes += 4.0 * double(D) * rp.slots_per_token;
  }
  return plan;
}

double EpPlan::seconds_per_token(double mem_gb_s, double link_gbit_s, double latency_us) const {
  const double mem = mem_gb_s * 1e9, link = link_gbit_s * 1e9 / 8;
  // Attention, dense layers, shared experts, routers and head: all on rank 0.
  double t = double(replicated_bytes - embed_bytes - mtp_replicated_bytes) / mem;
  double slowest = 0;
  bool remote = false;
  for (const RankPlan& r : per_rank) {
    slowest = std::max(slowest, r.slots_per_token * expert_bytes / mem);
    remote |= r.rank > 0 && r.touched > 0;
  }
  t += double(moe_layers) * slowest;
  if (remote) t += double(moe_layers) * 2 * latency_us * 1e-6 + bytes_per_token() / link;
  return t;
}

}  // namespace dsv3::dist
