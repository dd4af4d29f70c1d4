// Expert routing (route_token, src/model/moe.h) on hand-made examples whose answers are
// worked out in the comments: noaux_tc group masking, unbiased weights, tie-breaking,
// ordering, and V2's softmax greedy / group_limited_greedy.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "model/config.h"
#include "model/moe.h"

namespace dsv3 {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// A valid config with only the routing fields mattering.
model::ModelConfig routing_config(model::TopkMethod method, model::ScoringFunc scoring, int64_t experts, int64_t groups, int64_t topk_group,
                           int64_t k, bool norm, double scale) {
  model::ModelConfig c;
  c.model_type = scoring == model::ScoringFunc::Sigmoid ? "deepseek_v3" : "deepseek_v2";
  c.vocab_size = 16;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.moe_intermediate_size = 4;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 1;
  c.kv_lora_rank = 4;
  c.qk_nope_head_dim = 2;
  c.qk_rope_head_dim = 2;
  c.v_head_dim = 2;
  c.n_routed_experts = experts;
  c.topk_method = method;
  c.scoring_func = scoring;
  c.n_group = groups;
  c.topk_group = topk_group;
  c.num_experts_per_tok = k;
  c.norm_topk_prob = norm;
  c.routed_scaling_factor = scale;
  c.validate("test");
  return c;
}

model::ModelConfig v3_config(int64_t experts, int64_t groups, int64_t topk_group, int64_t k, double scale = 2.5) {
  return routing_config(model::TopkMethod::NoauxTc, model::ScoringFunc::Sigmoid, experts, groups, topk_group, k, true, scale);
}

struct Route {
  std::vector<int32_t> idx;
  std::vector<float> w;
};

Route route(const model::ModelConfig& c, const std::vector<float>& logits, const std::vector<float>* bias = nullptr) {
  EXPECT_EQ(int64_t(logits.size()), c.n_routed_experts);
  Route r{std::vector<int32_t>(size_t(c.num_experts_per_tok), -1), std::vector<float>(size_t(c.num_experts_per_tok))};
  model::route_token(c, logits.data(), bias ? bias->data() : nullptr, r.idx.data(), r.w.data());
  return r;
}

// Biases that make the biased selection score s + bias equal `target` (s = sigmoid(logit)).
std::vector<float> bias_for(const std::vector<float>& logits, const std::vector<float>& target) {
  std::vector<float> b(logits.size());
  for (size_t i = 0; i < b.size(); ++i) b[i] = target[i] - float(sigmoid(logits[i]));
  return b;
}

// 8 experts in 4 groups of 2, 2 groups kept, 2 experts chosen. Biased scores (all negative):
//   group 0: e0 -0.10, e1 -0.90  -> group score -1.00   (e0 is the best expert overall)
//   group 1: e2 -0.30, e3 -0.40  -> -0.70  kept
//   group 2: e4 -0.35, e5 -0.45  -> -0.80  kept
//   group 3: e6 -0.50, e7 -0.60  -> -1.10
// Correct (-inf masking): {2, 4}. Masking with 0 would pick {0, 1} (0 beats every negative
// score); no masking at all would pick {0, 2}.
const std::vector<float> kMaskLogits = {0.3f, -1.2f, 1.1f, -0.4f, 0.8f, 0.05f, -2.0f, 1.7f};
const std::vector<float> kMaskTarget = {-0.10f, -0.90f, -0.30f, -0.40f, -0.35f, -0.45f, -0.50f, -0.60f};

TEST(RoutingNoauxTc, MaskedGroupsLoseEvenAgainstNegativeScores) {
  const model::ModelConfig c = v3_config(8, 4, 2, 2);
  const std::vector<float> bias = bias_for(kMaskLogits, kMaskTarget);
  const Route r = route(c, kMaskLogits, &bias);
  EXPECT_EQ(r.idx, (std::vector<int32_t>{2, 4}));
}

TEST(RoutingNoauxTc, WeightsAreUnbiasedRenormalizedScaledScores) {
  const model::ModelConfig c = v3_config(8, 4, 2, 2, 2.5);
  const std::vector<float> bias = bias_for(kMaskLogits, kMaskTarget);
  const Route r = route(c, kMaskLogits, &bias);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{2, 4}));
  const double s2 = sigmoid(1.1), s4 = sigmoid(0.8);
  EXPECT_NEAR(r.w[0], s2 / (s2 + s4) * 2.5, 1e-6);
  EXPECT_NEAR(r.w[1], s4 / (s2 + s4) * 2.5, 1e-6);
  EXPECT_NEAR(r.w[0] + r.w[1], 2.5, 1e-6);
}

// The bias decides who is chosen, never how much they weigh: the expert with the best raw
// score (e7) is pushed out by its bias, and the chosen ones keep their raw-score weights.
TEST(RoutingNoauxTc, BiasSelectsButDoesNotWeigh) {
  const model::ModelConfig c = v3_config(8, 1, 1, 3, 1.5);
  const std::vector<float> logits = {0.5f, -0.5f, 1.0f, 0.0f, 2.0f, -1.0f, 0.25f, 3.0f};
  const std::vector<float> bias = {0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, -1.0f};
  // Biased: e0 .62, e1 .38, e2 .73, e3 1.5, e4 .88, e5 .27, e6 .56, e7 -.05 -> {2, 3, 4}.
  const Route r = route(c, logits, &bias);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{2, 3, 4}));
  const double s[3] = {sigmoid(1.0), sigmoid(0.0), sigmoid(2.0)};
  const double sum = s[0] + s[1] + s[2];
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(r.w[k], s[k] / sum * 1.5, 1e-6) << k;

  // Without the bias the raw top-3 is {2, 4, 7}.
  const Route plain = route(c, logits);
  EXPECT_EQ(plain.idx, (std::vector<int32_t>{2, 4, 7}));
}

TEST(RoutingNoauxTc, GroupScoreIsSumOfTopTwo) {
  // 3 groups of 3, keep 1, choose 2. Group 0 has the single best expert (0.95) but a sum of
  // its top two of 0.95 + 0.10; group 1's top two sum to 0.60 + 0.58 = 1.18 and wins.
  const model::ModelConfig c = v3_config(9, 3, 1, 2);
  std::vector<float> logits(9);
  const float p[9] = {0.95f, 0.10f, 0.05f, 0.60f, 0.58f, 0.20f, 0.50f, 0.40f, 0.30f};
  for (int i = 0; i < 9; ++i) logits[i] = float(std::log(p[i] / (1 - p[i])));  // sigmoid^-1
  EXPECT_EQ(route(c, logits).idx, (std::vector<int32_t>{3, 4}));
}

TEST(RoutingNoauxTc, TiesGoToLowerIndices) {
  // All equal: groups tie (keep 0 and 1), experts tie (take the lowest).
  {
    const model::ModelConfig c = v3_config(8, 4, 2, 3);
    const Route r = route(c, std::vector<float>(8, 0.25f));
    EXPECT_EQ(r.idx, (std::vector<int32_t>{0, 1, 2}));
    for (float w : r.w) EXPECT_NEAR(w, 2.5 / 3, 1e-6);
  }
  // Groups 1 and 3 tie for the last kept slot behind group 2; group 1 (lower) is kept.
  {
    const model::ModelConfig c = v3_config(8, 4, 2, 2);
    const std::vector<float> logits = {-3, -3, 0, 0, 2, 2, 0, 0};
    EXPECT_EQ(route(c, logits).idx, (std::vector<int32_t>{4, 5}));
    const model::ModelConfig c3 = v3_config(8, 4, 2, 3);
    EXPECT_EQ(route(c3, logits).idx, (std::vector<int32_t>{2, 4, 5}));
  }
  // Experts tie across groups: after e4, e3 and e6 (equal) compete for the last slot; e3 wins.
  {
    const model::ModelConfig c = v3_config(8, 4, 4, 2);
    const std::vector<float> logits = {-1, -2, -1.5f, 1, 2, -3, 1, -1};
    EXPECT_EQ(route(c, logits).idx, (std::vector<int32_t>{3, 4}));
    // The same inside a single group.
    const model::ModelConfig one = v3_config(8, 1, 1, 2);
    EXPECT_EQ(route(one, logits).idx, (std::vector<int32_t>{3, 4}));
  }
}

TEST(RoutingNoauxTc, IndicesSortedAscendingWithAlignedWeights) {
  // Score order e7 > e2 > e5 > e0; the result lists them by index with weights in step.
  const model::ModelConfig c = v3_config(8, 2, 2, 4, 1.0);
  const std::vector<float> logits = {0.1f, -1, 2.0f, -1, -1, 0.7f, -1, 3.0f};
  const Route r = route(c, logits);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{0, 2, 5, 7}));
  const double s[4] = {sigmoid(0.1), sigmoid(2.0), sigmoid(0.7), sigmoid(3.0)};
  const double sum = s[0] + s[1] + s[2] + s[3];
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(r.w[k], s[k] / sum, 1e-6) << k;
  EXPECT_LT(r.w[0], r.w[2]);
  EXPECT_GT(r.w[3], r.w[1]);
}

TEST(RoutingNoauxTc, FullScaleV3Shape) {
  // 256 experts, 8 groups of 32, 4 kept, 8 chosen: every chosen expert lies in a kept group
  // and the chosen set is the top 8 of those groups.
  const model::ModelConfig c = v3_config(256, 8, 4, 8);
  std::vector<float> logits(256), bias(256);
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return float((state >> 40) & 0xffffff) / float(1 << 24);
  };
  for (int i = 0; i < 256; ++i) {
    logits[i] = 4 * next() - 2;
    bias[i] = 0.4f * next() - 0.2f;
  }
  const Route r = route(c, logits, &bias);
  std::vector<double> sel(256), gscore(8);
  for (int i = 0; i < 256; ++i) sel[i] = float(sigmoid(logits[i])) + bias[i];
  for (int g = 0; g < 8; ++g) {
    std::vector<double> v(sel.begin() + 32 * g, sel.begin() + 32 * (g + 1));
    std::sort(v.rbegin(), v.rend());
    gscore[g] = v[0] + v[1];
  }
  std::vector<int> order(8);
  for (int g = 0; g < 8; ++g) order[g] = g;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return gscore[a] > gscore[b]; });
  std::vector<int> cand;
  for (int i = 0; i < 256; ++i)
    if (std::find(order.begin(), order.begin() + 4, i / 32) != order.begin() + 4) cand.push_back(i);
  std::sort(cand.begin(), cand.end(), [&](int a, int b) { return sel[a] > sel[b]; });
  std::vector<int32_t> want(cand.begin(), cand.begin() + 8);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(r.idx, want);
  double sum = 0;
  for (int32_t e : r.idx) sum += sigmoid(logits[e]);
  for (int k = 0; k < 8; ++k) EXPECT_NEAR(r.w[k], sigmoid(logits[r.idx[k]]) / sum * 2.5, 1e-5);
}

// ---- V2: softmax scoring -------------------------------------------------------------------

// Logits whose softmax is exactly proportional to p.
std::vector<float> logits_for_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double v : p) l.push_back(float(std::log(v)));
  return l;
}

std::vector<double> softmax(const std::vector<float>& l) {
  double m = -INFINITY, s = 0;
  for (float v : l) m = std::max(m, double(v));
  std::vector<double> p;
  for (float v : l) s += std::exp(v - m);
  for (float v : l) p.push_back(std::exp(v - m) / s);
  return p;
}

TEST(RoutingV2, GreedySoftmaxUnnormalized) {
  const model::ModelConfig c = routing_config(model::TopkMethod::Greedy, model::ScoringFunc::Softmax, 6, 1, 1, 2, false, 2.0);
  const std::vector<float> logits = logits_for_probs({0.05, 0.30, 0.10, 0.05, 0.40, 0.10});
  const std::vector<double> p = softmax(logits);
  const Route r = route(c, logits);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{1, 4}));
  EXPECT_NEAR(r.w[0], p[1] * 2.0, 1e-6);  // 0.60: softmax over all experts, not renormalized
  EXPECT_NEAR(r.w[1], p[4] * 2.0, 1e-6);  // 0.80
  EXPECT_NEAR(r.w[0], 0.6, 1e-6);
}

TEST(RoutingV2, GreedySoftmaxNormalized) {
  const model::ModelConfig c = routing_config(model::TopkMethod::Greedy, model::ScoringFunc::Softmax, 6, 1, 1, 2, true, 3.0);
  const std::vector<float> logits = logits_for_probs({0.05, 0.30, 0.10, 0.05, 0.40, 0.10});
  const Route r = route(c, logits);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{1, 4}));
  EXPECT_NEAR(r.w[0], 0.30 / 0.70 * 3.0, 1e-6);
  EXPECT_NEAR(r.w[1], 0.40 / 0.70 * 3.0, 1e-6);
}

TEST(RoutingV2, GreedyIgnoresGroupsAndBreaksTiesLow) {
  // Greedy with n_group set (V2-Lite has n_group 1 anyway) must not restrict groups.
  const model::ModelConfig c = routing_config(model::TopkMethod::Greedy, model::ScoringFunc::Softmax, 8, 4, 1, 3, false, 1.0);
  const std::vector<float> logits = logits_for_probs({0.2, 0.01, 0.2, 0.01, 0.2, 0.01, 0.2, 0.16});
  EXPECT_EQ(route(c, logits).idx, (std::vector<int32_t>{0, 2, 4}));
}

TEST(RoutingV2, GroupLimitedGreedyScoresGroupsByMax) {
  // 4 groups of 2, keep 1, choose 1. Group 0 has the best single expert (0.30); group 1's
  // sum (0.45) is larger but group_limited_greedy uses the max, so group 0 is kept.
  const std::vector<double> p = {0.30, 0.01, 0.25, 0.20, 0.09, 0.05, 0.06, 0.04};
  const std::vector<float> logits = logits_for_probs(p);
  const model::ModelConfig c = routing_config(model::TopkMethod::GroupLimitedGreedy, model::ScoringFunc::Softmax, 8, 4, 1, 1, false, 4.0);
  Route r = route(c, logits);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{0}));
  EXPECT_NEAR(r.w[0], 0.30 * 4.0, 1e-6);

  // Keep 2 groups (0 and 1), choose 3: {0, 2, 3}; expert 4 (group 2) is out.
  const model::ModelConfig c2 = routing_config(model::TopkMethod::GroupLimitedGreedy, model::ScoringFunc::Softmax, 8, 4, 2, 3, false, 1.0);
  r = route(c2, logits);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_NEAR(r.w[0], 0.30, 1e-6);
  EXPECT_NEAR(r.w[1], 0.25, 1e-6);
  EXPECT_NEAR(r.w[2], 0.20, 1e-6);

  // The same with norm_topk_prob: renormalized over the chosen three.
  const model::ModelConfig c3 = routing_config(model::TopkMethod::GroupLimitedGreedy, model::ScoringFunc::Softmax, 8, 4, 2, 3, true, 2.0);
  r = route(c3, logits);
  ASSERT_EQ(r.idx, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_NEAR(r.w[0], 0.30 / 0.75 * 2.0, 1e-6);
  EXPECT_NEAR(r.w[1], 0.25 / 0.75 * 2.0, 1e-6);
  EXPECT_NEAR(r.w[2], 0.20 / 0.75 * 2.0, 1e-6);
}

TEST(RoutingV2, GroupLimitedGreedyMaskedGroupLoses) {
  // Group maxes: g0 0.30, g1 0.25, g2 0.24, g3 0.04; two groups kept (g0, g1). Expert 4
  // (0.24) is the third best overall, but its group is masked: the third pick is expert 3
  // (0.02) instead. Unmasked top-3 would be {0, 2, 4}.
  const std::vector<double> p = {0.30, 0.01, 0.25, 0.02, 0.24, 0.10, 0.04, 0.04};
  const model::ModelConfig c = routing_config(model::TopkMethod::GroupLimitedGreedy, model::ScoringFunc::Softmax, 8, 4, 2, 3, false, 1.0);
  EXPECT_EQ(route(c, logits_for_probs(p)).idx, (std::vector<int32_t>{0, 2, 3}));
  // Greedy on the same scores ignores groups.
  const model::ModelConfig g = routing_config(model::TopkMethod::Greedy, model::ScoringFunc::Softmax, 8, 1, 1, 3, false, 1.0);
  EXPECT_EQ(route(g, logits_for_probs(p)).idx, (std::vector<int32_t>{0, 2, 4}));
}

}  // namespace
}  // namespace dsv3
