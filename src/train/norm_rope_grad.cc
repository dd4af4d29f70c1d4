#include "train/norm_rope_grad.h"

#include <cmath>

#include "base/error.h"
#include "train/serial_jobs.h"

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
void rms_norm_forward(const S* x, int64_t stride, const S* w, int64_t T, int64_t n, double eps, S* y, S* rstd,
                      ThreadPool* pool) {
  split_over_pool(pool, T, T * n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const S* xr = x + t * stride;
      double ss = 0;  // as the inference path: a double sum of squares
      for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * double(xr[i]);
      const S r = S(1.0 / std::sqrt(ss / double(n) + eps));
      rstd[t] = r;
      for (int64_t i = 0; i < n; ++i) y[t * n + i] = w[i] * (xr[i] * r);
    }
  });
}

template <class S>
void rms_norm_backward(const S* x, int64_t stride, const S* w, const S* rstd, const S* dy, int64_t T, int64_t n,
                       S* dx, S* dw, ThreadPool* pool) {
  split_over_pool(pool, T, T * n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const S* xr = x + t * stride;
      const S* g = dy + t * n;
      const double r = double(rstd[t]);
      // y_i = w_i x_i r: dx_j = r w_j g_j - x_j r^3 / n * sum_i w_i g_i x_i.
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += double(w[i]) * double(g[i]) * double(xr[i]);
      const S k = S(dot * r * r * r / double(n));
      S* d = dx + t * stride;
      for (int64_t i = 0; i < n; ++i) d[i] += S(r) * (w[i] * g[i]) - xr[i] * k;
    }
  });
  if (dw)
    for (int64_t t = 0; t < T; ++t) {
      const S* xr = x + t * stride;
      const S* g = dy + t * n;
      const S r = rstd[t];
      for (int64_t i = 0; i < n; ++i) dw[i] += g[i] * (xr[i] * r);
    }
}

namespace {

// cos and sin of every (position, frequency) pair, rounded to float as the inference path
// rounds them (model::ops::rope_interleaved), kept per thread for the last frequencies and
// start position: every layer and pass of a step rotates the same positions, and the
// library's sincos calls were a few percent of a training step.
struct RopeTable {
  std::vector<double> freqs;
  int64_t pos0 = 0, rows = 0;
  std::vector<float> cos, sin;  // [rows][freqs.size()]
  void ensure(const std::vector<double>& f, int64_t half, int64_t start, int64_t T) {
    if (f.size() < size_t(half)) fail("rope_apply: ", f.size(), " frequencies for ", half, " pairs");
    if (freqs != f || pos0 != start) {
      freqs = f;
      pos0 = start;
      rows = 0;
    }
    if (T <= rows) return;
    const size_t F = freqs.size();
    cos.resize(size_t(T) * F);
    sin.resize(size_t(T) * F);
    for (int64_t t = rows; t < T; ++t)
      for (size_t i = 0; i < F; ++i) {
        const double a = double(t + pos0) * freqs[i];
        cos[size_t(t) * F + i] = float(std::cos(a));
        sin[size_t(t) * F + i] = float(std::sin(a));
      }
    rows = T;
  }
};

}  // namespace

template <class S>
void rope_apply(S* x, int64_t T, int64_t H, int64_t row_stride, int64_t head_stride, int64_t d,
                const std::vector<double>& freqs, int64_t pos0, bool inverse) {
  thread_local RopeTable table;
  table.ensure(freqs, d / 2, pos0, T);
  const size_t F = table.freqs.size();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < d / 2; ++i) {
      const float cf = table.cos[size_t(t) * F + size_t(i)], sf = table.sin[size_t(t) * F + size_t(i)];
      const S c = S(cf), s = inverse ? -S(sf) : S(sf);
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
  template void rms_norm_forward<S>(const S*, int64_t, const S*, int64_t, int64_t, double, S*, S*,        \
                                    ThreadPool*);                                                           \
  template void rms_norm_backward<S>(const S*, int64_t, const S*, const S*, const S*, int64_t, int64_t, S*, \
                                     S*, ThreadPool*);                                                      \
  template void rope_apply<S>(S*, int64_t, int64_t, int64_t, int64_t, int64_t, const std::vector<double>&,  \
                              int64_t, bool);
DSV3_INSTANTIATE(float)
DSV3_INSTANTIATE(double)
#undef DSV3_INSTANTIATE

}  // namespace dsv3::train
