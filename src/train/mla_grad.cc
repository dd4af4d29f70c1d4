#include "train/mla_grad.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "threading/pool.h"
#include "kernels/gemm.h"
#include "train/attention_tiles.h"
#include "train/low_precision.h"
#include "train/norm_rope_grad.h"
#include "train/serial_jobs.h"

namespace dsv3::train {
namespace {

// Head h's operands, contiguous: Q [T, nope|rope], K [T, k_nope|shared rotated k_pe], V [T, v].
template <class S>
void gather_head(const MlaState<S>& st, const model::ModelConfig& c, int64_t h, int64_t T, S* q, S* k, S* v) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank, lat = c.latent_dim(), kvw = nope + vd;
  for (int64_t t = 0; t < T; ++t) {
    std::copy(&st.q[size_t((t * H + h) * qk)], &st.q[size_t((t * H + h + 1) * qk)], q + t * qk);
    const S* kv = &st.kv[size_t((t * H + h) * kvw)];
    std::copy(kv, kv + nope, k + t * qk);
    std::copy(&st.kva[size_t(t * lat + R)], &st.kva[size_t(t * lat + R + rope)], k + t * qk + nope);
    std::copy(kv + nope, kv + kvw, v + t * vd);
  }
}

// Runs fn(context, h0, h1) over the heads: whole heads per core (serial_jobs.h) when there
// are at least as many heads as cores, else one after another with each product split
// across the cores. The results are the same either way.
template <class F>
void for_heads(kernels::Context& ctx, int64_t H, F&& fn) {
  if (H < ctx.threads()) return fn(ctx, 0, H);
  on_serial_contexts(ctx, H, fn);
}

}  // namespace

template <class S>
void mla_forward(kernels::Context& ctx, const model::ModelConfig& c, const MlaTensors<S>& w,
                 const std::vector<double>& freqs, const InputOf<S>& x, int64_t T, MlaState<S>& st, S* out) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, nope = c.qk_nope_head_dim;
  const int64_t rope = c.qk_rope_head_dim, qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank;
  const int64_t lat = c.latent_dim(), kvw = nope + vd;
  const S scale = S(c.softmax_scale());

  st.q.resize(size_t(T * H * qk));
  if (c.q_lora_rank > 0) {
    const int64_t Q = c.q_lora_rank;
    st.qa.resize(size_t(T * Q));
    st.qa_rstd.resize(size_t(T));
    block_linear_forward(ctx, x, T, w.q_a, Q, D, st.qa.data());
    S* const qa_n = st.qa_n.buffer(ctx, T, Q);
    rms_norm_forward(st.qa.data(), Q, w.q_a_norm, T, Q, c.rms_norm_eps, qa_n, st.qa_rstd.data(), &ctx.pool());
    st.qa_n.seal(ctx);
    block_linear_forward(ctx, st.qa_n.input(), T, w.q_b, H * qk, Q, st.q.data());
  } else {
    block_linear_forward(ctx, x, T, w.q, H * qk, D, st.q.data());
  }
  rope_apply(st.q.data() + nope, T, H, H * qk, qk, rope, freqs, 0, false);

  st.kva.resize(size_t(T * lat));
  block_linear_forward(ctx, x, T, w.kv_a, lat, D, st.kva.data());
  st.c_rstd.resize(size_t(T));
  S* const latent = st.c.buffer(ctx, T, R);
  rms_norm_forward(st.kva.data(), lat, w.kv_a_norm, T, R, c.rms_norm_eps, latent, st.c_rstd.data(), &ctx.pool());
  st.c.seal(ctx);
  rope_apply(st.kva.data() + R, T, 1, lat, 0, rope, freqs, 0, false);  // one shared rope key

  st.kv.resize(size_t(T * H * kvw));
  block_linear_forward(ctx, st.c.input(), T, w.kv_b, H * kvw, R, st.kv.data());

  // Attention core, tiled (see attention_tile_forward): per head only the log-sum-exp of
  // each row is kept for the backward pass, which recomputes the probabilities tile by tile.
  st.lse.resize(size_t(H * T));
  st.attn.resize(size_t(T * H * vd));  // each head writes its slice
  const StepScope core(StepPhase::AttnCore);
  for_heads(ctx, H, [&](kernels::Context& k, int64_t h0, int64_t h1) {
    std::vector<S> qh(size_t(T * qk)), kh(size_t(T * qk)), vh(size_t(T * vd)), oh(size_t(T * vd));
    TileScratch<S> tile;
    for (int64_t h = h0; h < h1; ++h) {
      gather_head(st, c, h, T, qh.data(), kh.data(), vh.data());
      attention_tile_forward(k, T, qk, vd, scale, qh.data(), kh.data(), vh.data(), oh.data(), &st.lse[size_t(h * T)],
                             tile);
      for (int64_t t = 0; t < T; ++t)
        std::copy(&oh[size_t(t * vd)], &oh[size_t((t + 1) * vd)], &st.attn[size_t((t * H + h) * vd)]);
    }
  });
  block_linear_forward(ctx, st.attn.data(), T, w.o, D, H * vd, out);
}

template <class S>
void mla_backward(kernels::Context& ctx, const model::ModelConfig& c, const MlaTensors<S>& w,
                  const std::vector<double>& freqs, const InputOf<S>& x, int64_t T, const MlaState<S>& st,
                  const S* dout, S* dx, const MlaTensors<S>& g) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, nope = c.qk_nope_head_dim;
  const int64_t rope = c.qk_rope_head_dim, qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank;
  const int64_t lat = c.latent_dim(), kvw = nope + vd;
  const S scale = S(c.softmax_scale());

  std::vector<S> dattn(size_t(T * H * vd), S(0));
  block_linear_backward(ctx, st.attn.data(), dout, T, w.o, D, H * vd, dattn.data(), g.o);

  // Attention core per head, tiled (attention_tile_backward), recomputing each tile's
  // probabilities from the saved log-sum-exp.
  std::vector<S> dq(size_t(T * H * qk)), dkv(size_t(T * H * kvw));  // each head writes its slices whole
  // Each head's share of the shared rope key's gradient, summed in head order afterwards.
  std::vector<S> dpe_h(size_t(H * T * rope)), dpe(size_t(T * rope), S(0));
  std::optional<StepScope> core(std::in_place, StepPhase::AttnCore);
  for_heads(ctx, H, [&](kernels::Context& k, int64_t h0, int64_t h1) {
    std::vector<S> qh(size_t(T * qk)), kh(size_t(T * qk)), vh(size_t(T * vd)), oh(size_t(T * vd)), doh(size_t(T * vd));
    std::vector<S> dvh(size_t(T * vd)), dqh(size_t(T * qk)), dkh(size_t(T * qk));
    TileScratch<S> tile;
    for (int64_t h = h0; h < h1; ++h) {
      gather_head(st, c, h, T, qh.data(), kh.data(), vh.data());
      for (int64_t t = 0; t < T; ++t) {
        std::copy(&dattn[size_t((t * H + h) * vd)], &dattn[size_t((t * H + h + 1) * vd)], &doh[size_t(t * vd)]);
        std::copy(&st.attn[size_t((t * H + h) * vd)], &st.attn[size_t((t * H + h + 1) * vd)], &oh[size_t(t * vd)]);
      }
      attention_tile_backward(k, T, qk, vd, scale, qh.data(), kh.data(), vh.data(), oh.data(), doh.data(),
                              &st.lse[size_t(h * T)], dqh.data(), dkh.data(), dvh.data(), tile);
      for (int64_t t = 0; t < T; ++t) {  // head h's own slices of dq, dkv and dpe_h
        for (int64_t i = 0; i < qk; ++i) dq[size_t((t * H + h) * qk + i)] = dqh[size_t(t * qk + i)];
        S* dk = &dkv[size_t((t * H + h) * kvw)];
        for (int64_t i = 0; i < nope; ++i) dk[i] = dkh[size_t(t * qk + i)];
        for (int64_t i = 0; i < vd; ++i) dk[nope + i] = dvh[size_t(t * vd + i)];
        for (int64_t i = 0; i < rope; ++i) dpe_h[size_t((h * T + t) * rope + i)] = dkh[size_t(t * qk + nope + i)];
      }
    }
  });
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T * rope; ++i) dpe[size_t(i)] += dpe_h[size_t(h * T * rope + i)];
  core.reset();

  // Latent path: dkva = [d c_raw | d k_pe_raw].
  std::vector<S> dkva(size_t(T * lat), S(0)), dc(size_t(T * R), S(0));
  block_linear_backward(ctx, st.c.input(), dkv.data(), T, w.kv_b, H * kvw, R, dc.data(), g.kv_b);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < rope; ++i) dkva[size_t(t * lat + R + i)] += dpe[size_t(t * rope + i)];
  rope_apply(dkva.data() + R, T, 1, lat, 0, rope, freqs, 0, true);
  // rms_norm_backward needs the raw c: kva still holds it (only the rope part was rotated).
  rms_norm_backward(st.kva.data(), lat, w.kv_a_norm, st.c_rstd.data(), dc.data(), T, R, dkva.data(), g.kv_a_norm,
                    &ctx.pool());
  block_linear_backward(ctx, x, dkva.data(), T, w.kv_a, lat, D, dx, g.kv_a);

  rope_apply(dq.data() + nope, T, H, H * qk, qk, rope, freqs, 0, true);
  if (c.q_lora_rank > 0) {
    const int64_t Q = c.q_lora_rank;
    std::vector<S> dqn(size_t(T * Q), S(0)), dqa(size_t(T * Q), S(0));
    block_linear_backward(ctx, st.qa_n.input(), dq.data(), T, w.q_b, H * qk, Q, dqn.data(), g.q_b);
    rms_norm_backward(st.qa.data(), Q, w.q_a_norm, st.qa_rstd.data(), dqn.data(), T, Q, dqa.data(), g.q_a_norm,
                      &ctx.pool());
    block_linear_backward(ctx, x, dqa.data(), T, w.q_a, Q, D, dx, g.q_a);
  } else {
    block_linear_backward(ctx, x, dq.data(), T, w.q, H * qk, D, dx, g.q);
  }
}

template void mla_forward<float>(kernels::Context&, const model::ModelConfig&, const MlaTensors<float>&,
                                 const std::vector<double>&, const LinearInput<float>&, int64_t, MlaState<float>&,
                                 float*);
template void mla_forward<double>(kernels::Context&, const model::ModelConfig&, const MlaTensors<double>&,
                                  const std::vector<double>&, const LinearInput<double>&, int64_t,
                                  MlaState<double>&, double*);
template void mla_backward<float>(kernels::Context&, const model::ModelConfig&, const MlaTensors<float>&,
                                  const std::vector<double>&, const LinearInput<float>&, int64_t,
                                  const MlaState<float>&, const float*, float*, const MlaTensors<float>&);
template void mla_backward<double>(kernels::Context&, const model::ModelConfig&, const MlaTensors<double>&,
                                   const std::vector<double>&, const LinearInput<double>&, int64_t,
                                   const MlaState<double>&, const double*, double*, const MlaTensors<double>&);

}  // namespace dsv3::train
