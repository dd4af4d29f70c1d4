#include "train/norm_rope_grad.h"

#include <cmath>

namespace dsv3::train {

template <class S>
void embedding_forward(const int32_t* tokens, int64_t T, const S* E, int64_t D, S* out) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) out[t * D + i] = E[int64_t(tokens[t]) * D + i];
}

template <class S>
void embedding_backward(const int32_t* tokens, int64_t T, const S* dout, int64_t D, S* dE) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) dE[int64_t(tokens[t]) * D + i] += dout[t * D + i];
}

template <class S>
void rms_norm_forward(const S* x, int64_t stride, const S* w, int64_t T, int64_t n, double eps, S* y, S* rstd) {
  for (int64_t t = 0; t < T; ++t) {
    const S* xr = x + t * stride;
    double ss = 0;  // as the inference path: a double sum of squares
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * double(xr[i]);
    const S r = S(1.0 / std::sqrt(ss / double(n) + eps));
    rstd[t] = r;
    for (int64_t i = 0; i < n; ++i) y[t * n + i] = w[i] * (xr[i] * r);
  }
}

template <class S>
void rms_norm_backward(const S* x, int64_t stride, const S* w, const S* rstd, const S* dy, int64_t T, int64_t n,
                       S* dx, S* dw) {
  for (int64_t t = 0; t < T; ++t) {
    const S* xr = x + t * stride;
    const S* g = dy + t * n;
    const double r = double(rstd[t]);
    // y_i = w_i x_i r: dx_j = r w_j g_j - x_j r^3 / n * sum_i w_i g_i x_i.
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += double(w[i]) * double(g[i]) * double(xr[i]);
    const S k = S(dot * r * r * r / double(n));
    S* d = dx + t * stride;
    for (int64_t i = 0; i < n; ++i) d[i] += S(r) * (w[i] * g[i]) - xr[i] * k;
    if (dw)
      for (int64_t i = 0; i < n; ++i) dw[i] += g[i] * (xr[i] * S(r));
  }
}

template <class S>
void rope_apply(S* x, int64_t T, int64_t H, int64_t row_stride, int64_t head_stride, int64_t d,
                const std::vector<double>& freqs, int64_t pos0, bool inverse) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < d / 2; ++i) {
      const double a = double(t + pos0) * freqs[size_t(i)];
      // The same rounding of cos/sin as the inference path (model::ops::rope_interleaved).
      const S c = S(float(std::cos(a))), s = inverse ? -S(float(std::sin(a))) : S(float(std::sin(a)));
      for (int64_t h = 0; h < H; ++h) {
        S* p = x + t * row_stride + h * head_stride + 2 * i;
        const S x0 = p[0], x1 = p[1];
        p[0] = x0 * c - x1 * s;
        p[1] = x0 * s + x1 * c;
      }
    }
}

#define DSV3_INSTANTIATE(S)                                                                                 \
  template void embedding_forward<S>(const int32_t*, int64_t, const S*, int64_t, S*);                      \
  template void embedding_backward<S>(const int32_t*, int64_t, const S*, int64_t, S*);                     \
  template void rms_norm_forward<S>(const S*, int64_t, const S*, int64_t, int64_t, double, S*, S*);        \
  template void rms_norm_backward<S>(const S*, int64_t, const S*, const S*, const S*, int64_t, int64_t, S*, \
                                     S*);                                                                   \
  template void rope_apply<S>(S*, int64_t, int64_t, int64_t, int64_t, int64_t, const std::vector<double>&,  \
                              int64_t, bool);
DSV3_INSTANTIATE(float)
DSV3_INSTANTIATE(double)
#undef DSV3_INSTANTIATE

}  // namespace dsv3::train
