#include "kernels/adamw.h"

#include <cmath>

#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels {

void adamw_update_ref(const AdamWStep& s, float* w, const float* grad, float* m, float* v, int64_t n) {
  const auto keep = [&](double x) { return s.bf16_moments ? bf16_value(bf16_round(float(x))) : float(x); };
  for (int64_t i = 0; i < n; ++i) {
    const double g = grad[i];
    const double mi = s.b1 * double(m[i]) + (1.0 - s.b1) * g;
    const double vi = s.b2 * double(v[i]) + (1.0 - s.b2) * g * g;
    m[i] = keep(mi);
    v[i] = keep(vi);
    w[i] = float(double(w[i]) * s.decay - s.lr * (mi / s.c1) / (std::sqrt(vi / s.c2) + s.eps));
  }
}

void adamw_update(const AdamWStep& s, float* w, const float* grad, float* m, float* v, int64_t n) {
  if (!reference_kernels())
    if (const SimdKernels* k = active_simd()) return k->adamw_update(s, w, grad, m, v, n);
  adamw_update_ref(s, w, grad, m, v, n);
}

}  // namespace dsv3::kernels
