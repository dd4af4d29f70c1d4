#include "kernels/vector_ops.h"

#include "kernels/attention.h"
#include "kernels/isa.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels {
namespace {

// Eight independent accumulators: the compiler vectorises this without -ffast-math, and the
// summation order stays fixed.
float dot_portable(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

float dot_ref(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot(const float* a, const float* b, int64_t n) {
  if (reference_kernels()) return dot_ref(a, b, n);
  if (const SimdKernels* k = active_simd()) return k->dot(a, b, n);
  return dot_portable(a, b, n);
}

void exp_n(float* x, int64_t n) {
  if (!reference_kernels())
    if (const SimdKernels* k = active_simd()) return k->exp_n(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = exp_poly_ref(x[i]);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  if (!reference_kernels())
    if (const SimdKernels* k = active_simd()) return k->axpy(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace dsv3::kernels
