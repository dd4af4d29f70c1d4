// fp32 vector primitives with a fixed summation order, so a result never depends on how many
// tokens or threads a call had.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

//! Dot product of two fp32 vectors.
float dot(const float* a, const float* b, int64_t n);
float dot_ref(const float* a, const float* b, int64_t n);
//! y += a * x over n floats.
void axpy(float a, const float* x, float* y, int64_t n);
//! x[i] = exp(x[i]) as kernels::exp_poly_ref computes it (attention.h: a few ulp of exp on
//! [-87, 88], arguments below -87 count as -87, NaN stays NaN), vectorized with the same
//! bits: the softmaxes of training (its cross-entropy and attention).
void exp_n(float* x, int64_t n);

}  // namespace dsv3::kernels
