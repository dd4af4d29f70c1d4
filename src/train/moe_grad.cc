#include "train/moe_grad.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "train/low_precision.h"
#include "train/serial_jobs.h"

namespace dsv3::train {
namespace {

template <class S>
S sigmoid(S v) {
  return S(1) / (S(1) + std::exp(-v));
}

// Runs fn(context, e) for every routed expert with tokens, each expert whole on one core
// (serial_jobs.h). Experts go to the least-loaded core, largest first, so the cores finish
// together.
template <class F>
void for_experts_on_cores(kernels::Context& ctx, const std::vector<std::vector<int64_t>>& rows, F&& fn) {
  const int threads = ctx.threads();
  std::vector<int64_t> order;
  for (int64_t e = 0; e < int64_t(rows.size()); ++e)
    if (!rows[size_t(e)].empty()) order.push_back(e);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return rows[size_t(a)].size() > rows[size_t(b)].size(); });
  std::vector<std::vector<int64_t>> share(static_cast<size_t>(threads));
  std::vector<size_t> load(size_t(threads), 0);
  for (int64_t e : order) {
    const size_t t = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    share[t].push_back(e);
    load[t] += rows[size_t(e)].size();
  }
  const StepScope scope(StepPhase::Experts);
  on_serial_contexts(ctx, threads, [&](kernels::Context& one, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t e : share[size_t(t)]) fn(one, e);
  });
}

}  // namespace

template <class S>
void mlp_forward(kernels::Context& ctx, const MlpTensors<S>& w, int64_t D, int64_t I, const InputOf<S>& x, int64_t T,
                 MlpState<S>& st, S* out) {
  st.g.resize(size_t(T * I));
  st.u.resize(size_t(T * I));
  block_linear_forward(ctx, x, T, w.gate, I, D, st.g.data());
  block_linear_forward(ctx, x, T, w.up, I, D, st.u.data());
  S* const a = st.a.buffer(ctx, T, I);
  split_over_pool(&ctx.pool(), T * I, T * I, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] = st.g[size_t(i)] * sigmoid(st.g[size_t(i)]) * st.u[size_t(i)];
  });
  st.a.seal(ctx);
  block_linear_forward(ctx, st.a.input(), T, w.down, D, I, out);
}

template <class S>
void mlp_backward(kernels::Context& ctx, const MlpTensors<S>& w, int64_t D, int64_t I, const InputOf<S>& x, int64_t T,
                  const MlpState<S>& st, const S* dout, S* dx, const MlpTensors<S>& g) {
  std::vector<S> da(size_t(T * I), S(0));
  block_linear_backward(ctx, st.a.input(), dout, T, w.down, D, I, da.data(), g.down);
  std::vector<S> dg(size_t(T * I)), du(size_t(T * I));
  split_over_pool(&ctx.pool(), int64_t(da.size()), int64_t(da.size()), [&](int64_t i0, int64_t i1) {
    for (size_t i = size_t(i0); i < size_t(i1); ++i) {
      const S sg = sigmoid(st.g[i]);
      du[i] = da[i] * st.g[i] * sg;
      dg[i] = da[i] * st.u[i] * sg * (S(1) + st.g[i] * (S(1) - sg));  // silu'(g)
    }
  });
  block_linear_backward(ctx, x, dg.data(), T, w.gate, I, D, dx, g.gate);
  block_linear_backward(ctx, x, du.data(), T, w.up, I, D, dx, g.up);
}

template <class S>
void moe_forward(kernels::Context& ctx, const model::ModelConfig& c, const MoeTensors<S>& w, const float* bias,
                 const S* x, int64_t T, MoeState<S>& st, S* out) {
  if (c.scoring_func != model::ScoringFunc::Sigmoid)
    fail("training supports sigmoid expert scoring (DeepSeek-V3) only, not softmax scoring (V2)");
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok, I = c.moe_intermediate_size;
  st.s.resize(size_t(T * E));
  linear_forward(ctx, x, T, w.gate, E, D, st.s.data());
  for (S& v : st.s) v = sigmoid(v);
  st.idx.resize(size_t(T * K));
  st.w.resize(size_t(T * K));
  st.rows.assign(size_t(E), {});
  st.load.assign(size_t(E), 0);
  for (int64_t t = 0; t < T; ++t) {
    const S* s = &st.s[size_t(t * E)];
    int32_t* idx = &st.idx[size_t(t * K)];
    select_experts(c, s, bias, idx);
    S sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += s[idx[k]];
    for (int64_t k = 0; k < K; ++k) {
      S wk = s[idx[k]];  // the unbiased score
      if (c.norm_topk_prob) wk /= sum;
      st.w[size_t(t * K + k)] = wk * S(c.routed_scaling_factor);
      st.rows[size_t(idx[k])].push_back(t * K + k);
      ++st.load[size_t(idx[k])];
    }
  }
  std::fill(out, out + T * D, S(0));
  st.xe.assign(size_t(E), {});
  st.ye.assign(size_t(E), {});
  st.est.assign(size_t(E), {});
  for_experts_on_cores(ctx, st.rows, [&](kernels::Context& one, int64_t e) {
    const auto& rows = st.rows[size_t(e)];
    const int64_t n = int64_t(rows.size());
    auto& xe = st.xe[size_t(e)];
    auto& ye = st.ye[size_t(e)];
    S* const gathered = xe.buffer(one, n, D);
    ye.resize(size_t(n * D));
    for (int64_t i = 0; i < n; ++i) std::copy(x + rows[i] / K * D, x + (rows[i] / K + 1) * D, gathered + i * D);
    xe.seal(one);
    mlp_forward(one, w.experts[size_t(e)], D, I, xe.input(), n, st.est[size_t(e)], ye.data());
  });
  // Combined in expert order on one thread: the sums do not depend on the thread count.
  for (int64_t e = 0; e < E; ++e) {
    const auto& rows = st.rows[size_t(e)];
    const auto& ye = st.ye[size_t(e)];
    for (int64_t i = 0; i < int64_t(rows.size()); ++i) {
      S* o = out + rows[i] / K * D;
      const S wk = st.w[size_t(rows[i])];
      for (int64_t d = 0; d < D; ++d) o[d] += wk * ye[size_t(i * D + d)];
    }
  }
  if (w.shared.gate) {
    std::vector<S> sh(size_t(T * D));
    mlp_forward(ctx, w.shared, D, c.n_shared_experts * I, x, T, st.shared, sh.data());
    for (int64_t i = 0; i < T * D; ++i) out[i] += sh[size_t(i)];
  }
}

template <class S>
double moe_balance(const model::ModelConfig& c, const MoeState<S>& st, int64_t T) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  double total = 0;
  for (int64_t t = 0; t < T; ++t) {
    const S* s = &st.s[size_t(t * E)];
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += double(s[e]);
    for (int64_t e = 0; e < E; ++e) {
      const double f = double(E) / double(K * T) * double(st.load[size_t(e)]);
      total += f * double(s[e]) / z / double(T);
    }
  }
  return total;
}

template <class S>
void moe_backward(kernels::Context& ctx, const model::ModelConfig& c, const MoeTensors<S>& w, const S* x, int64_t T,
                  const MoeState<S>& st, const S* dout, double balance_scale, S* dx, const MoeTensors<S>& g) {
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok, I = c.moe_intermediate_size;
  std::vector<S> dw(size_t(T * K), S(0));  // d/d mixing weight
  std::vector<std::vector<S>> dxe(static_cast<size_t>(E));
  for_experts_on_cores(ctx, st.rows, [&](kernels::Context& one, int64_t e) {
    const auto& rows = st.rows[size_t(e)];
    const int64_t n = int64_t(rows.size());
    const auto& ye = st.ye[size_t(e)];
    std::vector<S> dye(size_t(n * D));
    for (int64_t i = 0; i < n; ++i) {
      const S* go = dout + rows[i] / K * D;
      const S wk = st.w[size_t(rows[i])];
      S a = 0;
      for (int64_t d = 0; d < D; ++d) {
        a += go[d] * ye[size_t(i * D + d)];
        dye[size_t(i * D + d)] = wk * go[d];
      }
      dw[size_t(rows[i])] = a;  // each (token, slot) belongs to one expert
    }
    dxe[size_t(e)].assign(size_t(n * D), S(0));
    mlp_backward(one, w.experts[size_t(e)], D, I, st.xe[size_t(e)].input(), n, st.est[size_t(e)], dye.data(),
                 dxe[size_t(e)].data(), g.experts[size_t(e)]);
  });
  for (int64_t e = 0; e < E; ++e) {
    const auto& rows = st.rows[size_t(e)];
    for (int64_t i = 0; i < int64_t(rows.size()); ++i) {
      S* d = dx + rows[i] / K * D;
      for (int64_t j = 0; j < D; ++j) d[j] += dxe[size_t(e)][size_t(i * D + j)];
    }
  }
  if (w.shared.gate) mlp_backward(ctx, w.shared, D, c.n_shared_experts * I, x, T, st.shared, dout, dx, g.shared);

  // Scores: through the mixing weights (chosen experts only) and the balance term (all).
  std::vector<S> dlogit(size_t(T * E), S(0));
  const S rsf = S(c.routed_scaling_factor);
  for (int64_t t = 0; t < T; ++t) {
    const S* s = &st.s[size_t(t * E)];
    const int32_t* idx = &st.idx[size_t(t * K)];
    S* ds = &dlogit[size_t(t * E)];
    if (c.norm_topk_prob) {
      // w_k = rsf * s_k / Z over the chosen: ds_j = rsf * (dw_j - sum_k dw_k s_k / Z) / Z.
      S z = 0, dot = 0;
      for (int64_t k = 0; k < K; ++k) z += s[idx[k]];
      for (int64_t k = 0; k < K; ++k) dot += dw[size_t(t * K + k)] * s[idx[k]];
      for (int64_t k = 0; k < K; ++k) ds[idx[k]] += rsf * (dw[size_t(t * K + k)] - dot / z) / z;
    } else {
      for (int64_t k = 0; k < K; ++k) ds[idx[k]] += rsf * dw[size_t(t * K + k)];
    }
    if (balance_scale != 0.0) {
      // sum_i f_i s_i / Z / T: d/ds_j = (f_j - sum_i f_i s_i / Z) / (Z T).
      double z = 0, fs = 0;
      for (int64_t e = 0; e < E; ++e) {
        const double f = double(E) / double(K * T) * double(st.load[size_t(e)]);
        z += double(s[e]);
        fs += f * double(s[e]);
      }
      for (int64_t e = 0; e < E; ++e) {
        const double f = double(E) / double(K * T) * double(st.load[size_t(e)]);
        ds[e] += S(balance_scale * (f - fs / z) / (z * double(T)));
      }
    }
    for (int64_t e = 0; e < E; ++e) ds[e] *= s[e] * (S(1) - s[e]);  // sigmoid'
  }
  linear_backward(ctx, x, dlogit.data(), T, w.gate, E, D, dx, g.gate);
}

#define DSV3_INSTANTIATE(S)                                                                                            \
  template void mlp_forward<S>(kernels::Context&, const MlpTensors<S>&, int64_t, int64_t, const LinearInput<S>&,        \
                               int64_t, MlpState<S>&, S*);                                                             \
  template void mlp_backward<S>(kernels::Context&, const MlpTensors<S>&, int64_t, int64_t, const LinearInput<S>&,       \
                                int64_t, const MlpState<S>&, const S*, S*, const MlpTensors<S>&);                      \
  template void moe_forward<S>(kernels::Context&, const model::ModelConfig&, const MoeTensors<S>&, const float*,       \
                               const S*, int64_t, MoeState<S>&, S*);                                                   \
  template double moe_balance<S>(const model::ModelConfig&, const MoeState<S>&, int64_t);                              \
  template void moe_backward<S>(kernels::Context&, const model::ModelConfig&, const MoeTensors<S>&, const S*, int64_t, \
                                const MoeState<S>&, const S*, double, S*, const MoeTensors<S>&);
DSV3_INSTANTIATE(float)
DSV3_INSTANTIATE(double)
#undef DSV3_INSTANTIATE

}  // namespace dsv3::train
