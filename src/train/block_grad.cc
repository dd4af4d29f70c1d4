#include "train/block_grad.h"

#include "train/norm_rope_grad.h"

namespace dsv3::train {

template <class S>
void block_forward(kernels::Context& ctx, const model::ModelConfig& c, const BlockTensors<S>& w, const float* bias,
                   const std::vector<double>& freqs, S* h, int64_t T, BlockState<S>& st) {
  const int64_t D = c.hidden_size;
  const size_t n = size_t(T * D);
  st.h_in.assign(h, h + n);
  st.r1.resize(size_t(T));
  S* const x1 = st.x1.buffer(ctx, T, D);
  rms_norm_forward(h, D, w.attn_norm, T, D, c.rms_norm_eps, x1, st.r1.data(), &ctx.pool());
  st.x1.seal(ctx);
  std::vector<S> y(n);
  mla_forward(ctx, c, w.attn, freqs, st.x1.input(), T, st.attn, y.data());
  for (size_t i = 0; i < n; ++i) h[i] += y[i];
  st.h_mid.assign(h, h + n);
  st.r2.resize(size_t(T));
  S* const x2 = st.x2.buffer(ctx, T, D, /*keep_fp32=*/w.moe);  // the router reads it in fp32
  rms_norm_forward(h, D, w.mlp_norm, T, D, c.rms_norm_eps, x2, st.r2.data(), &ctx.pool());
  st.x2.seal(ctx);
  if (w.moe) {
    moe_forward(ctx, c, w.experts, bias, st.x2.fp32(), T, st.moe, y.data());
  } else {
    mlp_forward(ctx, w.dense, D, c.intermediate_size, st.x2.input(), T, st.mlp, y.data());
  }
  for (size_t i = 0; i < n; ++i) h[i] += y[i];
}

template <class S>
void block_backward(kernels::Context& ctx, const model::ModelConfig& c, const BlockTensors<S>& w,
                    const std::vector<double>& freqs, int64_t T, const BlockState<S>& st, double balance_scale, S* dh,
                    const BlockTensors<S>& g) {
  const int64_t D = c.hidden_size;
  const size_t n = size_t(T * D);
  std::vector<S> dx(n, S(0));
  if (w.moe) {
    moe_backward(ctx, c, w.experts, st.x2.fp32(), T, st.moe, dh, balance_scale, dx.data(), g.experts);
  } else {
    mlp_backward(ctx, w.dense, D, c.intermediate_size, st.x2.input(), T, st.mlp, dh, dx.data(), g.dense);
  }
  rms_norm_backward(st.h_mid.data(), D, w.mlp_norm, st.r2.data(), dx.data(), T, D, dh, g.mlp_norm, &ctx.pool());
  std::fill(dx.begin(), dx.end(), S(0));
  mla_backward(ctx, c, w.attn, freqs, st.x1.input(), T, st.attn, dh, dx.data(), g.attn);
  rms_norm_backward(st.h_in.data(), D, w.attn_norm, st.r1.data(), dx.data(), T, D, dh, g.attn_norm, &ctx.pool());
}

template void block_forward<float>(kernels::Context&, const model::ModelConfig&, const BlockTensors<float>&,
                                   const float*, const std::vector<double>&, float*, int64_t, BlockState<float>&);
template void block_forward<double>(kernels::Context&, const model::ModelConfig&, const BlockTensors<double>&,
                                    const float*, const std::vector<double>&, double*, int64_t, BlockState<double>&);
template void block_backward<float>(kernels::Context&, const model::ModelConfig&, const BlockTensors<float>&,
                                    const std::vector<double>&, int64_t, const BlockState<float>&, double, float*,
                                    const BlockTensors<float>&);
template void block_backward<double>(kernels::Context&, const model::ModelConfig&, const BlockTensors<double>&,
                                     const std::vector<double>&, int64_t, const BlockState<double>&, double, double*,
                                     const BlockTensors<double>&);

}  // namespace dsv3::train
