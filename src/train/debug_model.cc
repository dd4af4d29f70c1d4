#include "train/debug_model.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "base/error.h"
#include "base/rng.h"
#include "threading/pool.h"

namespace dsv3::train {
namespace {

enum : size_t { kEmbed = 0, kGate = 1, kExperts = 2 };

}  // namespace

DebugMoeBigram::DebugMoeBigram(int64_t vocab, int64_t dim, int64_t experts, uint64_t seed, double init_std,
                               ThreadPool& pool)
    : pool_(&pool), V_(vocab), D_(dim), E_(experts), bias_(size_t(experts), 0.0f) {
  if (vocab < 2 || dim < 1 || experts < 1) fail("debug_moe_bigram needs vocab >= 2, dim >= 1, experts >= 1");
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    t_.push_back(Param{std::move(name), std::move(shape), std::vector<float>(size_t(n)), std::vector<float>(size_t(n))});
  };
  add("embed", {V_, D_});
  add("gate", {E_, D_});
  for (int64_t e = 0; e < E_; ++e) add("experts." + std::to_string(e), {D_, D_});
  add("head", {V_, D_});
  add("out_scale", {D_});
  for (Param& t : t_) {
    Rng rng(seed ^ hash_name(t.name));
    if (t.name == "out_scale") {
      std::fill(t.value.begin(), t.value.end(), 1.0f);
    } else {
      // Unit-variance embeddings so the first logits are informative; small matrices elsewhere.
      const double std = t.name == "embed" ? 1.0 : init_std;
      for (float& v : t.value) v = float(rng.normal() * std);
    }
  }
}

std::vector<ParamView> DebugMoeBigram::params() {
  std::vector<ParamView> out;
  for (Param& t : t_) out.push_back(t.view());
  return out;
}

std::vector<float>& DebugMoeBigram::gate_bias(int64_t moe_layer) {
  if (moe_layer != 0) fail("debug_moe_bigram has one MoE layer, asked for ", moe_layer);
  return bias_;
}

std::string DebugMoeBigram::gate_bias_name(int64_t) const { return "gate.e_score_correction_bias"; }

void DebugMoeBigram::zero_grad() {
  for (Param& t : t_) std::fill(t.grad.begin(), t.grad.end(), 0.0f);
}

LossTerms DebugMoeBigram::loss_and_grad(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale) {
  return run(tokens, T, w, grad_scale, true);
}

LossTerms DebugMoeBigram::loss_only(const int32_t* tokens, int64_t T, const LossWeights& w) {
  return run(tokens, T, w, 0.0f, false);
}

LossTerms DebugMoeBigram::run(const int32_t* tokens, int64_t T, const LossWeights& lw, float grad_scale, bool backward) {
  if (T < 2) fail("debug_moe_bigram: a sequence needs at least 2 tokens, got ", T);
  if (lw.target_mask) fail("debug_moe_bigram takes no loss masks (passkey examples are for deepseek_v3 models)");
  if (lw.teacher_logits) fail("debug_moe_bigram takes no teacher (distillation is for deepseek_v3 models)");
  for (int64_t i = 0; i < T; ++i)
    if (tokens[i] < 0 || tokens[i] >= V_) fail("token id ", tokens[i], " at position ", i, " is outside the vocabulary of ", V_);
  const int64_t N = T - 1, D = D_, E = E_, V = V_;
  Param& embed = t_[kEmbed];
  Param& gate = t_[kGate];
  Param& head = t_[size_t(kExperts + E)];
  Param& scale = t_[size_t(kExperts + E + 1)];

  // Forward, keeping what the backward needs: scores, choice, expert output, logits' softmax.
  std::vector<float> s(size_t(N * E)), u(size_t(N * D)), y(size_t(N * D)), p(size_t(N * V));
  std::vector<int64_t> choice(static_cast<size_t>(N));
  // The vocabulary loops run on the thread pool in fixed chunks; per-chunk partial results
  // are combined in chunk order, so the numbers never depend on the thread count.
  constexpr int64_t kChunk = 4096;
  const int64_t n_chunks = (V + kChunk - 1) / kChunk;
  std::vector<double> cmax(static_cast<size_t>(n_chunks)), csum(static_cast<size_t>(n_chunks)),
      cdz(static_cast<size_t>(n_chunks * D));
  auto for_chunks = [&](const std::function<void(int64_t, int64_t, int64_t)>& fn) {
    auto run_range = [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) fn(c, c * kChunk, std::min(V, (c + 1) * kChunk));
    };
    if (n_chunks == 1) run_range(0, 1);
    else pool_->parallel_for(n_chunks, [&](int, int64_t c0, int64_t c1) { run_range(c0, c1); });
  };
  LossTerms out;
  out.tokens = N;
  out.counted = N;
  out.expert_load.assign(1, std::vector<int64_t>(size_t(E), 0));
  double ce = 0;
  for (int64_t t = 0; t < N; ++t) {
    const float* x = &embed.value[size_t(tokens[t]) * D];
    float* st = &s[size_t(t * E)];
    int64_t best = 0;
    for (int64_t e = 0; e < E; ++e) {
      double z = 0;
      for (int64_t d = 0; d < D; ++d) z += double(gate.value[size_t(e * D + d)]) * x[d];
      st[e] = float(1.0 / (1.0 + std::exp(-z)));
      if (st[e] + bias_[size_t(e)] > st[best] + bias_[size_t(best)]) best = e;
    }
    choice[size_t(t)] = best;
    ++out.expert_load[0][size_t(best)];
    const std::vector<float>& A = t_[size_t(kExperts + best)].value;
    float* ut = &u[size_t(t * D)];
    float* yt = &y[size_t(t * D)];
    for (int64_t r = 0; r < D; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < D; ++c) acc += double(A[size_t(r * D + c)]) * x[c];
      ut[r] = float(acc);
      yt[r] = x[r] + st[best] * ut[r];
    }
    float* pt = &p[size_t(t * V)];
    for_chunks([&](int64_t c, int64_t v0, int64_t v1) {
      double m = -HUGE_VAL;
      for (int64_t v = v0; v < v1; ++v) {
        double z = 0;
        for (int64_t d = 0; d < D; ++d) z += double(head.value[size_t(v * D + d)]) * scale.value[size_t(d)] * yt[d];
        pt[v] = float(z);
        m = std::max(m, z);
      }
      cmax[size_t(c)] = m;
    });
    const double mx = *std::max_element(cmax.begin(), cmax.end());
    // One exp per vocabulary entry: with a real 129K vocabulary it is the dominant cost.
    const double target = pt[tokens[t + 1]];
    for_chunks([&](int64_t c, int64_t v0, int64_t v1) {
      double sum = 0;
      for (int64_t v = v0; v < v1; ++v) {
        const double e = std::exp(double(pt[v]) - mx);
        pt[v] = float(e);
        sum += e;
      }
      csum[size_t(c)] = sum;
    });
    double sum = 0;
    for (double part : csum) sum += part;  // chunk order: the same total for any thread count
    ce += -(target - mx - std::log(sum));
    for_chunks([&](int64_t, int64_t v0, int64_t v1) {
      for (int64_t v = v0; v < v1; ++v) pt[v] = float(double(pt[v]) / sum);
    });
  }
  out.main_ce = ce / double(N);

  // Sequence-wise balance loss (top-1): alpha * sum_i f_i P_i with f_i = E/N * count_i (a
  // constant) and P_i = mean_t s_{i,t} / sum_j s_{j,t}.
  std::vector<double> f(static_cast<size_t>(E)), ssum(size_t(N), 0.0);
  for (int64_t e = 0; e < E; ++e) f[size_t(e)] = double(E) / double(N) * double(out.expert_load[0][size_t(e)]);
  double bal = 0;
  for (int64_t t = 0; t < N; ++t) {
    for (int64_t e = 0; e < E; ++e) ssum[size_t(t)] += s[size_t(t * E + e)];
    for (int64_t e = 0; e < E; ++e) bal += f[size_t(e)] * s[size_t(t * E + e)] / ssum[size_t(t)] / double(N);
  }
  out.balance = lw.balance_alpha * bal;
  out.loss = out.main_ce + out.balance;
  if (!backward) return out;

  const double g0 = double(grad_scale) / double(N);  // d(mean CE)/d(per-token CE), scaled
  std::vector<double> dz(static_cast<size_t>(D)), dy(static_cast<size_t>(D)), dx(static_cast<size_t>(D)), ds(static_cast<size_t>(E));
  for (int64_t t = 0; t < N; ++t) {
    const int32_t tok = tokens[t];
    const float* x = &embed.value[size_t(tok) * D];
    const float* st = &s[size_t(t * E)];
    const float* yt = &y[size_t(t * D)];
    const float* ut = &u[size_t(t * D)];
    const float* pt = &p[size_t(t * V)];
    const int32_t next = tokens[t + 1];
    std::fill(cdz.begin(), cdz.end(), 0.0);
    for_chunks([&](int64_t c, int64_t v0, int64_t v1) {
      double* part = &cdz[size_t(c * D)];
      for (int64_t v = v0; v < v1; ++v) {
        const double g = g0 * (double(pt[v]) - (v == next ? 1.0 : 0.0));
        float* hg = &head.grad[size_t(v * D)];
        const float* hv = &head.value[size_t(v * D)];
        for (int64_t d = 0; d < D; ++d) {
          hg[d] += float(g * scale.value[size_t(d)] * yt[d]);
          part[d] += g * hv[d];
        }
      }
    });
    std::fill(dz.begin(), dz.end(), 0.0);
    for (int64_t c = 0; c < n_chunks; ++c)
      for (int64_t d = 0; d < D; ++d) dz[size_t(d)] += cdz[size_t(c * D + d)];
    for (int64_t d = 0; d < D; ++d) {
      scale.grad[size_t(d)] += float(dz[size_t(d)] * yt[d]);
      dy[size_t(d)] = dz[size_t(d)] * scale.value[size_t(d)];
      dx[size_t(d)] = dy[size_t(d)];
    }
    const int64_t e = choice[size_t(t)];
    const double se = st[e];
    Param& A = t_[size_t(kExperts + e)];
    double dse = 0;
    for (int64_t r = 0; r < D; ++r) {
      dse += dy[size_t(r)] * ut[r];
      const double a = se * dy[size_t(r)];
      for (int64_t c = 0; c < D; ++c) {
        A.grad[size_t(r * D + c)] += float(a * x[c]);
        dx[size_t(c)] += a * A.value[size_t(r * D + c)];
      }
    }
    // Balance-loss gradient w.r.t. every score: alpha/N * (f_i / S - sum_k f_k s_k / S^2).
    double fs = 0;
    for (int64_t k = 0; k < E; ++k) fs += f[size_t(k)] * st[k];
    const double S = ssum[size_t(t)];
    for (int64_t k = 0; k < E; ++k)
      ds[size_t(k)] = double(grad_scale) * lw.balance_alpha / double(N) * (f[size_t(k)] / S - fs / (S * S));
    ds[size_t(e)] += dse;
    for (int64_t k = 0; k < E; ++k) {
      const double dpre = ds[size_t(k)] * double(st[k]) * (1.0 - double(st[k]));
      float* gg = &gate.grad[size_t(k * D)];
      const float* gv = &gate.value[size_t(k * D)];
      for (int64_t d = 0; d < D; ++d) {
        gg[d] += float(dpre * x[d]);
        dx[size_t(d)] += dpre * gv[d];
      }
    }
    float* eg = &embed.grad[size_t(tok) * D];
    for (int64_t d = 0; d < D; ++d) eg[d] += float(dx[size_t(d)]);
  }
  return out;
}

}  // namespace dsv3::train
