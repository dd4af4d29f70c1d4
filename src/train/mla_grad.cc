#include "train/mla_grad.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "threading/pool.h"
#include "train/linear_grad.h"
#include "train/norm_rope_grad.h"

namespace dsv3::train {

template <class S>
void mla_forward(const ModelConfig& c, const MlaTensors<S>& w, const std::vector<double>& freqs, const S* x,
                 int64_t T, MlaState<S>& st, S* out) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, nope = c.qk_nope_head_dim;
  const int64_t rope = c.qk_rope_head_dim, qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank;
  const int64_t lat = c.latent_dim(), kvw = nope + vd;
  const S scale = S(c.softmax_scale());

  st.q.resize(size_t(T * H * qk));
  if (c.q_lora_rank > 0) {
    const int64_t Q = c.q_lora_rank;
    st.qa.resize(size_t(T * Q));
    st.qa_rstd.resize(size_t(T));
    st.qa_n.resize(size_t(T * Q));
    linear_forward(x, T, w.q_a, Q, D, st.qa.data());
    rms_norm_forward(st.qa.data(), Q, w.q_a_norm, T, Q, c.rms_norm_eps, st.qa_n.data(), st.qa_rstd.data());
    linear_forward(st.qa_n.data(), T, w.q_b, H * qk, Q, st.q.data());
  } else {
    linear_forward(x, T, w.q, H * qk, D, st.q.data());
  }
  rope_apply(st.q.data() + nope, T, H, H * qk, qk, rope, freqs, 0, false);

  st.kva.resize(size_t(T * lat));
  linear_forward(x, T, w.kv_a, lat, D, st.kva.data());
  st.c_rstd.resize(size_t(T));
  st.c.resize(size_t(T * R));
  rms_norm_forward(st.kva.data(), lat, w.kv_a_norm, T, R, c.rms_norm_eps, st.c.data(), st.c_rstd.data());
  rope_apply(st.kva.data() + R, T, 1, lat, 0, rope, freqs, 0, false);  // one shared rope key

  st.kv.resize(size_t(T * H * kvw));
  linear_forward(st.c.data(), T, w.kv_b, H * kvw, R, st.kv.data());

  st.p.assign(size_t(H * T * T), S(0));
  st.attn.assign(size_t(T * H * vd), S(0));
  ThreadPool::global().parallel_for(H, [&](int, int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const S* qt = &st.q[size_t((t * H + h) * qk)];
        S* p = &st.p[size_t((h * T + t) * T)];
        S m = -std::numeric_limits<S>::infinity();
        for (int64_t j = 0; j <= t; ++j) {  // causal
          const S* kj = &st.kv[size_t((j * H + h) * kvw)];
          const S* pe = &st.kva[size_t(j * lat + R)];
          S s1 = 0, s2 = 0;
          for (int64_t i = 0; i < nope; ++i) s1 += qt[i] * kj[i];
          for (int64_t i = 0; i < rope; ++i) s2 += qt[nope + i] * pe[i];
          p[j] = (s1 + s2) * scale;
          m = std::max(m, p[j]);
        }
        S sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - m));
        S* o = &st.attn[size_t((t * H + h) * vd)];
        for (int64_t j = 0; j <= t; ++j) {
          p[j] /= sum;
          const S* vj = &st.kv[size_t((j * H + h) * kvw + nope)];
          for (int64_t i = 0; i < vd; ++i) o[i] += p[j] * vj[i];
        }
      }
  });
  linear_forward(st.attn.data(), T, w.o, D, H * vd, out);
}

template <class S>
void mla_backward(const ModelConfig& c, const MlaTensors<S>& w, const std::vector<double>& freqs, const S* x,
                  int64_t T, const MlaState<S>& st, const S* dout, S* dx, const MlaTensors<S>& g) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, nope = c.qk_nope_head_dim;
  const int64_t rope = c.qk_rope_head_dim, qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank;
  const int64_t lat = c.latent_dim(), kvw = nope + vd;
  const S scale = S(c.softmax_scale());

  std::vector<S> dattn(size_t(T * H * vd), S(0));
  linear_backward(st.attn.data(), dout, T, w.o, D, H * vd, dattn.data(), g.o);

  // Attention core, one head per task; the shared rope key's gradient is summed per head
  // into its own slice and reduced afterwards in head order (thread-count independent).
  std::vector<S> dq(size_t(T * H * qk), S(0)), dkv(size_t(T * H * kvw), S(0));
  std::vector<S> dpe_h(size_t(H * T * rope), S(0));
  ThreadPool::global().parallel_for(H, [&](int, int64_t h0, int64_t h1) {
    std::vector<S> dp(static_cast<size_t>(T));
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const S* p = &st.p[size_t((h * T + t) * T)];
        const S* go = &dattn[size_t((t * H + h) * vd)];
        S dot = 0;
        for (int64_t j = 0; j <= t; ++j) {
          const S* vj = &st.kv[size_t((j * H + h) * kvw + nope)];
          S* dvj = &dkv[size_t((j * H + h) * kvw + nope)];
          S a = 0;
          for (int64_t i = 0; i < vd; ++i) {
            a += go[i] * vj[i];
            dvj[i] += p[j] * go[i];
          }
          dp[j] = a;
          dot += p[j] * a;
        }
        const S* qt = &st.q[size_t((t * H + h) * qk)];
        S* dqt = &dq[size_t((t * H + h) * qk)];
        for (int64_t j = 0; j <= t; ++j) {
          const S ds = p[j] * (dp[size_t(j)] - dot) * scale;  // softmax backward, then the scale
          if (ds == S(0)) continue;
          const S* kj = &st.kv[size_t((j * H + h) * kvw)];
          S* dkj = &dkv[size_t((j * H + h) * kvw)];
          const S* pe = &st.kva[size_t(j * lat + R)];
          S* dpe = &dpe_h[size_t((h * T + j) * rope)];
          for (int64_t i = 0; i < nope; ++i) {
            dqt[i] += ds * kj[i];
            dkj[i] += ds * qt[i];
          }
          for (int64_t i = 0; i < rope; ++i) {
            dqt[nope + i] += ds * pe[i];
            dpe[i] += ds * qt[nope + i];
          }
        }
      }
  });

  // Latent path: dkva = [d c_raw | d k_pe_raw].
  std::vector<S> dkva(size_t(T * lat), S(0)), dc(size_t(T * R), S(0));
  linear_backward(st.c.data(), dkv.data(), T, w.kv_b, H * kvw, R, dc.data(), g.kv_b);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < rope; ++i) dkva[size_t(t * lat + R + i)] += dpe_h[size_t((h * T + t) * rope + i)];
  rope_apply(dkva.data() + R, T, 1, lat, 0, rope, freqs, 0, true);
  // rms_norm_backward needs the raw c: kva still holds it (only the rope part was rotated).
  rms_norm_backward(st.kva.data(), lat, w.kv_a_norm, st.c_rstd.data(), dc.data(), T, R, dkva.data(), g.kv_a_norm);
  linear_backward(x, dkva.data(), T, w.kv_a, lat, D, dx, g.kv_a);

  rope_apply(dq.data() + nope, T, H, H * qk, qk, rope, freqs, 0, true);
  if (c.q_lora_rank > 0) {
    const int64_t Q = c.q_lora_rank;
    std::vector<S> dqn(size_t(T * Q), S(0)), dqa(size_t(T * Q), S(0));
    linear_backward(st.qa_n.data(), dq.data(), T, w.q_b, H * qk, Q, dqn.data(), g.q_b);
    rms_norm_backward(st.qa.data(), Q, w.q_a_norm, st.qa_rstd.data(), dqn.data(), T, Q, dqa.data(), g.q_a_norm);
    linear_backward(x, dqa.data(), T, w.q_a, Q, D, dx, g.q_a);
  } else {
    linear_backward(x, dq.data(), T, w.q, H * qk, D, dx, g.q);
  }
}

template void mla_forward<float>(const ModelConfig&, const MlaTensors<float>&, const std::vector<double>&,
                                 const float*, int64_t, MlaState<float>&, float*);
template void mla_forward<double>(const ModelConfig&, const MlaTensors<double>&, const std::vector<double>&,
                                  const double*, int64_t, MlaState<double>&, double*);
template void mla_backward<float>(const ModelConfig&, const MlaTensors<float>&, const std::vector<double>&,
                                  const float*, int64_t, const MlaState<float>&, const float*, float*,
                                  const MlaTensors<float>&);
template void mla_backward<double>(const ModelConfig&, const MlaTensors<double>&, const std::vector<double>&,
                                   const double*, int64_t, const MlaState<double>&, const double*, double*,
                                   const MlaTensors<double>&);

}  // namespace dsv3::train
