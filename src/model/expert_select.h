// Which experts a token goes to: scores (+ e_score_correction_bias, which only selects),
// group limiting (noaux_tc: a group's two best; group_limited_greedy: its best), then the top
// num_experts_per_tok. A template so the trainer's double-precision gradient checks route
// exactly as inference does in fp32.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "base/error.h"
#include "model/config.h"

namespace dsv3::model {

//! Index of the largest value not yet taken; the lowest index wins ties.
template <class S>
int64_t argmax_untaken(const S* v, int64_t n, const std::vector<char>& taken) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!taken[size_t(i)] && (best < 0 || v[i] > v[best])) best = i;
  DSV3_CHECK(best >= 0, "nothing left to choose");
  return best;
}

//! Writes the chosen experts for scores s [n_routed_experts] to idx, sorted ascending.
//! bias: e_score_correction_bias or nullptr.
template <class S>
void select_experts(const ModelConfig& c, const S* s, const float* bias, int32_t* idx) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  std::vector<S> sel(s, s + E);
  if (bias)
    for (int64_t e = 0; e < E; ++e) sel[size_t(e)] += S(bias[e]);
  if (c.topk_method != TopkMethod::Greedy && c.n_group > 1 && c.topk_group < c.n_group) {
    const int64_t G = c.n_group, per = E / G;
    std::vector<S> gscore(static_cast<size_t>(G));
    for (int64_t gi = 0; gi < G; ++gi) {
      const S* v = &sel[size_t(gi * per)];
      if (c.topk_method == TopkMethod::NoauxTc) {  // the sum of the group's two best
        std::vector<char> taken(size_t(per), 0);
        const int64_t a = argmax_untaken(v, per, taken);
        taken[size_t(a)] = 1;
        gscore[size_t(gi)] = v[a] + v[argmax_untaken(v, per, taken)];
      } else {  // group_limited_greedy: the group's best
        gscore[size_t(gi)] = *std::max_element(v, v + per);
      }
    }
    std::vector<char> keep(size_t(G), 0);
    for (int64_t i = 0; i < c.topk_group; ++i) keep[size_t(argmax_untaken(gscore.data(), G, keep))] = 1;
    for (int64_t gi = 0; gi < G; ++gi)  // -inf, not 0: biased scores can be negative
      if (!keep[size_t(gi)])
        std::fill(&sel[size_t(gi * per)], &sel[size_t(gi * per)] + per, -std::numeric_limits<S>::infinity());
  }
  std::vector<char> taken(size_t(E), 0);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t e = argmax_untaken(sel.data(), E, taken);
    taken[size_t(e)] = 1;
    idx[k] = int32_t(e);
  }
  std::sort(idx, idx + K);
}

}  // namespace dsv3::model
