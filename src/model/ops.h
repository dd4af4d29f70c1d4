// Small per-row operations of the forward pass. They are cheap next to the matrix products
// and already scalar, so they serve as their own reference twins.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace dsv3::model::ops {

//! out = w * x / sqrt(mean(x^2) + eps), in fp32 (out may alias x).
inline void rms_norm(const float* x, const float* w, int64_t n, double eps, float* out) {
  double ss = 0;  // a double sum keeps hidden sizes in the thousands exact enough
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float r = float(1.0 / std::sqrt(ss / double(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * r);
}

//! Interleaved rotary embedding: pairs (x[2i], x[2i+1]) rotate by pos * freqs[i].
inline void rope_interleaved(float* x, int64_t d, const double* freqs, int64_t pos) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const double a = double(pos) * freqs[i];
    const float c = float(std::cos(a)), s = float(std::sin(a));
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

//! In-place softmax over n values, fp32 with max subtraction.
inline void softmax(float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace dsv3::model::ops
