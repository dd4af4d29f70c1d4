// The trainer's AdamW update (train/optimizer.h) over one run of a parameter's elements, at
// memory speed. Every element's math is double precision, in the twin's order of operations,
// and each vector lane does the same IEEE operations, so every ISA gives the twin's bits.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

struct AdamWStep {
  double b1, b2;      // the moments' decays
  double c1, c2;      // bias corrections: 1 - b1^t, 1 - b2^t
  double lr, eps;
  double decay;       // 1 - lr * weight_decay, or 1 where the parameter does not decay
  bool bf16_moments;  // keep m and v rounded to BF16 (the update uses the unrounded ones)
};

//! For each i < n, with g = grad[i] (all in double):
//!   m' = b1 m + (1 - b1) g;  v' = b2 v + ((1 - b2) g) g;  m, v = m', v' as fp32 (BF16 if asked);
//!   w = fp32(w decay - (lr (m' / c1)) / (sqrt(v' / c2) + eps)).
void adamw_update(const AdamWStep& s, float* w, const float* grad, float* m, float* v, int64_t n);
void adamw_update_ref(const AdamWStep& s, float* w, const float* grad, float* m, float* v, int64_t n);

}  // namespace dsv3::kernels
