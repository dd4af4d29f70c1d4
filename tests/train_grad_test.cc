// Finite-difference checks, in double precision, of every hand-written backward pass of the
// trainer (src/train): linear, RMSNorm, RoPE, embedding, cross-entropy, MLA (q-LoRA and plain
// q_proj), SwiGLU, MoE routing weights + balance loss, a whole decoder block, and the fp32
// TrainModel end to end (tied MTP embedding/head included) at a looser tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "base/error.h"
#include "base/rng.h"
#include "kernels/isa.h"
#include "train/block_grad.h"
#include "train/linear_grad.h"
#include "train/loss.h"
#include "train/model_grad.h"
#include "test_util.h"
#include "train/norm_rope_grad.h"

namespace dsv3::train {
namespace {

// The thread pool and GEMM buffers the training code runs on.
kernels::Context& ctx() {
  static kernels::Context c(testutil::pool());
  return c;
}

using Vec = std::vector<double>;

Vec random_vec(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  Vec v(n);
  for (double& x : v) x = rng.symmetric(float(scale));
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences on up to `max_checks` evenly spread elements of x against the
// analytic gradient; f re-evaluates the scalar loss from the current x.
void check_grad(Vec& x, const Vec& grad, const std::function<double()>& f, const std::string& what,
                size_t max_checks = 400) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  const size_t step = std::max<size_t>(1, x.size() / max_checks);
  double worst = 0;
  size_t at = 0;
  double nonzero = 0;
  for (size_t i = 0; i < x.size(); i += step) {
    const double x0 = x[i], h = 1e-6;
    x[i] = x0 + h;
    const double fp = f();
    x[i] = x0 - h;
    const double fm = f();
    x[i] = x0;
    const double num = (fp - fm) / (2 * h);
    const double err = std::fabs(num - grad[i]) / std::max(1.0, std::fabs(num));
    nonzero = std::max(nonzero, std::fabs(num));
    if (err > worst) worst = err, at = i;
  }
  EXPECT_LE(worst, 2e-6) << what << ": element " << at << " analytic " << grad[at];
  EXPECT_GT(nonzero, 1e-6) << what << ": the checked gradient is identically zero (a vacuous check)";
}

model::ModelConfig tiny_config(bool q_lora) {
  model::ModelConfig c;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.intermediate_size = 10;
  c.moe_intermediate_size = 6;
  c.num_hidden_layers = 2;
  c.num_nextn_predict_layers = 1;
  c.num_attention_heads = 2;
  c.n_shared_experts = 1;
  c.n_routed_experts = 8;
  c.routed_scaling_factor = 2.5;
  c.n_group = 4;
  c.topk_group = 2;
  c.num_experts_per_tok = 3;
  c.first_k_dense_replace = 1;
  c.q_lora_rank = q_lora ? 7 : 0;
  c.kv_lora_rank = 6;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 5;
  c.rope_scaling = model::RopeScaling{true, 40.0, 4, 32.0, 1.0, 1.0, 1.0};
  c.max_position_embeddings = 160;
  c.eos_token_ids = {1};
  return c;
}

TEST(TrainGrad, Linear) {
  const int64_t T = 3, in = 5, out = 4;
  Vec x = random_vec(T * in, 1), W = random_vec(out * in, 2), R = random_vec(T * out, 3);
  auto f = [&] {
    Vec y(size_t(T * out));
    linear_forward(ctx(), x.data(), T, W.data(), out, in, y.data());
    return dot(y, R);
  };
  Vec dx(x.size()), dW(W.size());
  linear_backward(ctx(), x.data(), R.data(), T, W.data(), out, in, dx.data(), dW.data());
  check_grad(x, dx, f, "linear dx");
  check_grad(W, dW, f, "linear dW");
}

TEST(TrainGrad, RmsNormEmbeddingAndRope) {
  const int64_t T = 3, n = 8, V = 5;
  const std::vector<double> freqs = tiny_config(true).rope_frequencies();
  const int32_t tokens[T] = {4, 0, 4};
  Vec E = random_vec(V * n, 4), w = random_vec(n, 5), R = random_vec(T * n, 6);
  auto f = [&] {
    Vec x(size_t(T * n)), y(size_t(T * n)), r(static_cast<size_t>(T));
    embedding_forward(tokens, T, E.data(), n, x.data());
    rms_norm_forward(x.data(), n, w.data(), T, n, 1e-6, y.data(), r.data());
    rope_apply(y.data() + 4, T, 1, n, 0, 4, freqs, 3, false);  // rope on a slice, as MLA does
    return dot(y, R);
  };
  Vec x(size_t(T * n)), y(size_t(T * n)), r(static_cast<size_t>(T)), dy = R, dx(size_t(T * n)), dE(E.size()),
      dw(w.size());
  embedding_forward(tokens, T, E.data(), n, x.data());
  rms_norm_forward(x.data(), n, w.data(), T, n, 1e-6, y.data(), r.data());
  rope_apply(dy.data() + 4, T, 1, n, 0, 4, freqs, 3, true);
  rms_norm_backward(x.data(), n, w.data(), r.data(), dy.data(), T, n, dx.data(), dw.data());
  embedding_backward(tokens, T, dx.data(), n, dE.data());
  check_grad(E, dE, f, "embedding+norm+rope dE");
  check_grad(w, dw, f, "rms norm dw");
}

TEST(TrainGrad, CrossEntropy) {
  const int64_t N = 4, V = 7;
  const int32_t targets[N] = {0, 6, 3, 3};
  Vec z = random_vec(N * V, 7, 3.0), dz(z.size());
  cross_entropy(ctx(), z.data(), targets, N, V, 0.7, dz.data());
  check_grad(z, dz, [&] { return 0.7 * cross_entropy<double>(ctx(), z.data(), targets, N, V, 1.0, nullptr); }, "CE");
  // Uniform logits: the loss is log V exactly.
  Vec u(size_t(V), 0.25);
  EXPECT_NEAR(cross_entropy<double>(ctx(), u.data(), targets, 1, V, 1.0, nullptr), std::log(double(V)), 1e-12);
}

// The fp32 cross-entropy (vectorized exp, sums in eight lanes, gradient in fp32) against the
// double one, on rows as wide as a vocabulary; and a NaN logit is a NaN loss, not a lost term.
TEST(TrainGrad, FloatCrossEntropyFollowsTheDoubleOneAndKeepsNaN) {
  const int64_t N = 3, V = 4101;
  const int32_t targets[N] = {0, 4100, 17};
  Vec zd = random_vec(N * V, 9, 6.0);
  std::vector<float> z(zd.size()), dz(zd.size());
  for (size_t i = 0; i < z.size(); ++i) zd[i] = double(z[i] = float(zd[i]));
  Vec dzd(zd.size());
  const double lf = cross_entropy<float>(ctx(), z.data(), targets, N, V, 0.7, dz.data());
  const double ld = cross_entropy<double>(ctx(), zd.data(), targets, N, V, 0.7, dzd.data());
  EXPECT_NEAR(lf, ld, 1e-6 * ld);
  for (size_t i = 0; i < dz.size(); ++i) ASSERT_NEAR(dz[i], dzd[i], 1e-6 * std::fabs(dzd[i]) + 1e-12) << i;
  z[size_t(V + 5)] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(cross_entropy<float>(ctx(), z.data(), targets, N, V, 0.7, dz.data())));
}

// With a mask only the counted rows make the loss (their mean) and get gradient.
TEST(TrainGrad, MaskedCrossEntropy) {
  const int64_t N = 4, V = 7;
  const int32_t targets[N] = {0, 6, 3, 3};
  const uint8_t mask[N] = {0, 1, 0, 1};
  Vec z = random_vec(N * V, 8, 3.0), dz(z.size(), 5.0);
  const double l = cross_entropy(ctx(), z.data(), targets, N, V, 0.7, dz.data(), mask);
  check_grad(z, dz, [&] { return 0.7 * cross_entropy<double>(ctx(), z.data(), targets, N, V, 1.0, nullptr, mask); },
             "masked CE");
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(dz[size_t(v)], 0.0);  // row 0 is not counted
  const double r1 = cross_entropy<double>(ctx(), z.data() + V, targets + 1, 1, V, 1.0, nullptr);
  const double r3 = cross_entropy<double>(ctx(), z.data() + 3 * V, targets + 3, 1, V, 1.0, nullptr);
  EXPECT_NEAR(l, (r1 + r3) / 2, 1e-12);
  const uint8_t none[N] = {};
  EXPECT_EQ(cross_entropy<double>(ctx(), z.data(), targets, N, V, 1.0, dz.data(), none), 0.0);
  for (double d : dz) EXPECT_EQ(d, 0.0);
}

// Weights of one block (MLA + dense MLP or MoE) in double, with matching gradient buffers.
struct BlockData {
  std::vector<std::pair<std::string, Vec>> w, g;
  BlockTensors<double> V, G;
  std::vector<float> bias;

  BlockData(const model::ModelConfig& c, bool moe, uint64_t seed) {
    const int64_t D = c.hidden_size, H = c.num_attention_heads;
    auto add = [&](const std::string& name, int64_t n, double scale, double*& vp, double*& gp) {
      w.push_back({name, random_vec(size_t(n), seed++, scale)});
      if (name.find("norm") != std::string::npos)
        for (double& v : w.back().second) v += 1.0;
      g.push_back({name, Vec(size_t(n))});
      vp = nullptr, gp = nullptr;
    };
    // Two passes: sizes first (stable storage), then pointers.
    struct Spec { std::string name; int64_t n; double scale; double** vp; double** gp; };
    std::vector<Spec> specs;
    auto spec = [&](const std::string& name, int64_t n, double scale, double*& vp, double*& gp) {
      specs.push_back({name, n, scale, &vp, &gp});
    };
    spec("attn_norm", D, 0.2, V.attn_norm, G.attn_norm);
    spec("mlp_norm", D, 0.2, V.mlp_norm, G.mlp_norm);
    if (c.q_lora_rank > 0) {
      spec("q_a", c.q_lora_rank * D, 0.5, V.attn.q_a, G.attn.q_a);
      spec("q_a_norm", c.q_lora_rank, 0.2, V.attn.q_a_norm, G.attn.q_a_norm);
      spec("q_b", H * c.qk_head_dim() * c.q_lora_rank, 0.5, V.attn.q_b, G.attn.q_b);
    } else {
      spec("q", H * c.qk_head_dim() * D, 0.5, V.attn.q, G.attn.q);
    }
    spec("kv_a", c.latent_dim() * D, 0.5, V.attn.kv_a, G.attn.kv_a);
    spec("kv_a_norm", c.kv_lora_rank, 0.2, V.attn.kv_a_norm, G.attn.kv_a_norm);
    spec("kv_b", H * (c.qk_nope_head_dim + c.v_head_dim) * c.kv_lora_rank, 0.5, V.attn.kv_b, G.attn.kv_b);
    spec("o", D * H * c.v_head_dim, 0.3, V.attn.o, G.attn.o);
    V.moe = G.moe = moe;
    auto mlp = [&](const std::string& p, int64_t I, MlpTensors<double>& v, MlpTensors<double>& gr) {
      spec(p + "gate", I * D, 0.5, v.gate, gr.gate);
      spec(p + "up", I * D, 0.5, v.up, gr.up);
      spec(p + "down", D * I, 0.5, v.down, gr.down);
    };
    if (!moe) {
      mlp("dense.", c.intermediate_size, V.dense, G.dense);
    } else {
      spec("gate", c.n_routed_experts * D, 0.5, V.experts.gate, G.experts.gate);
      V.experts.experts.resize(size_t(c.n_routed_experts));
      G.experts.experts.resize(size_t(c.n_routed_experts));
      for (int64_t e = 0; e < c.n_routed_experts; ++e)
        mlp("expert" + std::to_string(e) + ".", c.moe_intermediate_size, V.experts.experts[size_t(e)],
            G.experts.experts[size_t(e)]);
      mlp("shared.", c.n_shared_experts * c.moe_intermediate_size, V.experts.shared, G.experts.shared);
      Rng rng(seed + 99);
      bias.resize(size_t(c.n_routed_experts));
      for (float& b : bias) b = rng.symmetric(0.3f);
    }
    w.reserve(specs.size());
    g.reserve(specs.size());
    for (auto& s : specs) {
      double *a, *b;
      add(s.name, s.n, s.scale, a, b);
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      *specs[i].vp = w[i].second.data();
      *specs[i].gp = g[i].second.data();
    }
  }
};

void check_block(const model::ModelConfig& c, bool moe, double balance) {
  const int64_t T = 5, D = c.hidden_size;
  const std::vector<double> freqs = c.rope_frequencies();
  BlockData b(c, moe, 11);
  Vec h0 = random_vec(size_t(T * D), 3), R = random_vec(size_t(T * D), 4);
  auto f = [&] {
    Vec h = h0;
    BlockState<double> st;
    block_forward(ctx(), c, b.V, moe ? b.bias.data() : nullptr, freqs, h.data(), T, st);
    return dot(h, R) + (moe ? balance * moe_balance(c, st.moe, T) : 0.0);
  };
  Vec h = h0, dh = R;
  BlockState<double> st;
  block_forward(ctx(), c, b.V, moe ? b.bias.data() : nullptr, freqs, h.data(), T, st);
  block_backward(ctx(), c, b.V, freqs, T, st, balance, dh.data(), b.G);
  check_grad(h0, dh, f, "block input", 40);
  for (size_t i = 0; i < b.w.size(); ++i) {
    // Unchosen experts get no gradient, and no finite difference either: skip them quickly.
    bool any = false;
    for (double v : b.g[i].second) any = any || v != 0.0;
    if (!any && b.w[i].first.rfind("expert", 0) == 0) continue;
    check_grad(b.w[i].second, b.g[i].second, f, b.w[i].first, 12);
  }
}

TEST(TrainGrad, DenseBlockWithQLora) { check_block(tiny_config(true), false, 0.0); }
TEST(TrainGrad, DenseBlockWithPlainQProj) { check_block(tiny_config(false), false, 0.0); }
TEST(TrainGrad, MoeBlockWithBalanceLoss) { check_block(tiny_config(true), true, 0.5); }

TEST(TrainGrad, MoeWithoutNormalisedTopkAndGroupLimits) {
  model::ModelConfig c = tiny_config(false);
  c.norm_topk_prob = false;
  c.n_group = 1;
  c.topk_group = 1;
  check_block(c, true, 0.0);
}

TEST(TrainGrad, GateBiasSelectsButDoesNotWeight) {
  const model::ModelConfig c = tiny_config(false);
  const int64_t E = c.n_routed_experts;
  std::vector<double> s(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) s[size_t(e)] = 0.1 + 0.05 * double(e);  // expert 7 best
  std::vector<float> bias(size_t(E), 0.0f);
  bias[0] = 1.0f;  // lifts expert 0 (and its group) into the choice
  int32_t idx[3];
  select_experts(c, s.data(), bias.data(), idx);
  EXPECT_EQ(idx[0], 0);
  select_experts<double>(c, s.data(), nullptr, idx);
  EXPECT_EQ(idx[0], 5);  // groups {4,5} and {6,7} win; top 3 of them are 5, 6, 7
  EXPECT_EQ(idx[2], 7);
}

// The fp32 model end to end: central differences in float on the largest-gradient elements
// of a spread of tensors (tied embedding and head, MTP-only tensors, gate, norms).
TEST(TrainGrad, WholeModelFloatWithMtpAndBalance) {
  const model::ModelConfig c = tiny_config(true);
  TrainModel m = TrainModel::init(c, 5, 0.3, testutil::pool());
  for (int64_t i = 0; i < m.num_moe_layers(); ++i) {
    Rng rng(uint64_t(40 + i));
    for (float& b : m.gate_bias(i)) b = rng.symmetric(0.2f);
  }
  const std::vector<int32_t> toks = {0, 5, 22, 7, 7, 13, 2};
  const LossWeights opts{0.4, 0.3};
  const LossTerms s = m.loss_and_grad(toks.data(), int64_t(toks.size()), opts, 2.0f);
  EXPECT_NEAR(s.loss, s.main_ce + 0.4 * s.mtp_ce + 0.3 * s.balance, 1e-9);
  EXPECT_GT(s.mtp_ce, 0.0);
  EXPECT_GT(s.balance, 0.0);
  ASSERT_EQ(s.expert_load.size(), 2u);
  for (const auto& load : s.expert_load) {
    int64_t total = 0;
    for (int64_t v : load) total += v;
    EXPECT_EQ(total, (&load == &s.expert_load[0] ? 7 : 5) * c.num_experts_per_tok);
  }
  const LossTerms e = m.loss_only(toks.data(), int64_t(toks.size()), opts);
  EXPECT_DOUBLE_EQ(e.loss, s.loss);
  int checked = 0;
  for (const ParamView& p : m.params()) {
    const std::string& name = *p.name;
    const bool want = name == "model.embed_tokens.weight" || name == "lm_head.weight" ||
                      name.find("layers.2.") != std::string::npos || name.find("gate.weight") != std::string::npos ||
                      name.find("layernorm") != std::string::npos || name == "model.norm.weight";
    if (!want) continue;
    size_t at = 0;
    for (size_t i = 0; i < p.numel(); ++i)
      if (std::fabs(p.grad[i]) > std::fabs(p.grad[at])) at = i;
    if (std::fabs(p.grad[at]) < 1e-3) continue;
    const float x0 = p.value[at], h = 1e-2f;
    p.value[at] = x0 + h;
    const double fp = m.loss_only(toks.data(), int64_t(toks.size()), opts).loss;
    p.value[at] = x0 - h;
    const double fm = m.loss_only(toks.data(), int64_t(toks.size()), opts).loss;
    p.value[at] = x0;
    const double num = 2.0 * (fp - fm) / (2.0 * double(h));  // grad_scale 2
    EXPECT_NEAR(p.grad[at], num, 2e-2 * std::fabs(num) + 1e-3) << name << " element " << at;
    ++checked;
  }
  EXPECT_GE(checked, 15);
  m.zero_grad();
  for (const ParamView& p : m.params())
    for (size_t i = 0; i < p.numel(); ++i) ASSERT_EQ(p.grad[i], 0.0f) << *p.name;
}

TEST(TrainModelApi, BiasesAndBadInputAreErrors) {
  const model::ModelConfig c = tiny_config(true);
  TrainModel m = TrainModel::init(c, 1, 0.02, testutil::pool());
  ASSERT_EQ(m.num_moe_layers(), 2);  // layer 1 and the MTP block 2
  EXPECT_EQ(m.gate_bias_name(1), "model.layers.2.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(m.gate_bias(1), std::vector<float>(8, 0.0f));
  EXPECT_THROW(m.gate_bias(2), Error);
  EXPECT_THROW(m.gate_bias_name(-1), Error);
  const int32_t bad[3] = {0, 23, 1};
  EXPECT_THROW(m.loss_only(bad, 3, {}), Error);
  EXPECT_THROW(m.loss_only(bad, 1, {}), Error);
  const int32_t two[2] = {0, 1};
  EXPECT_THROW(m.loss_only(two, 2, LossWeights{0.3, 0.0}), Error);  // MTP needs 3 tokens
  model::ModelConfig v2 = c;
  v2.scoring_func = model::ScoringFunc::Softmax;
  v2.topk_method = model::TopkMethod::Greedy;
  EXPECT_THROW(TrainModel::init(v2, 1, 0.02, testutil::pool()), Error);
}

// Fresh weights: norms exactly 1, every other tensor spread around 0 with std init_std.
TEST(TrainModelApi, InitByRole) {
  TrainModel m = TrainModel::init(tiny_config(false), 3, 0.5, testutil::pool());
  for (const ParamView& p : m.params()) {
    const bool norm = p.name->ends_with("norm.weight");
    double sum = 0, sq = 0;
    for (uint64_t i = 0; i < p.numel(); ++i) {
      sum += p.value[i];
      sq += double(p.value[i]) * p.value[i];
    }
    const double mean = sum / double(p.numel()), var = sq / double(p.numel()) - mean * mean;
    if (norm) {
      EXPECT_EQ(mean, 1.0) << *p.name;
      EXPECT_EQ(var, 0.0) << *p.name;
    } else if (p.numel() >= 100) {
      EXPECT_NEAR(std::sqrt(var), 0.5, 0.15) << *p.name;
    }
  }
}

}  // namespace
}  // namespace dsv3::train
