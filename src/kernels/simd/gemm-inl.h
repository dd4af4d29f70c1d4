// The training GEMM's register tile, written once over the vector traits V of the including
// translation unit (simd/avx2.cc, simd/avx512.cc). Include only from those. The packing and
// the split over threads are gemm.cc's; this is only the inner loop.
#pragma once

#include <cstdint>

#include "kernels/simd/table.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

// C[kGemmMr, 2*V::N] (+)= Apack[K][kGemmMr] * Bpack[K][2*V::N]: the C tile stays in
// registers over the whole K loop (12 accumulators + 2 B vectors + 1 broadcast fit 16
// registers); rows >= m and cols >= n are not stored (the packs are zero padded).
inline void gemm_tile(int64_t K, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n) {
  constexpr int kMr = kGemmMr;
  typename V::F acc[kMr][2];
  for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = V::zero();
  for (int64_t k = 0; k < K; ++k) {
    const typename V::F b0 = V::load(bp), b1 = V::load(bp + V::N);
    for (int r = 0; r < kMr; ++r) {
      const typename V::F a = V::set1(ap[r]);
      acc[r][0] = V::fma(a, b0, acc[r][0]);
      acc[r][1] = V::fma(a, b1, acc[r][1]);
    }
    ap += kMr;
    bp += 2 * V::N;
  }
  alignas(64) float tmp[2 * V::N];
  for (int r = 0; r < m; ++r) {
    float* cr = c + r * ldc;
    if (n == 2 * V::N) {
      V::store(cr, V::add(V::load(cr), acc[r][0]));
      V::store(cr + V::N, V::add(V::load(cr + V::N), acc[r][1]));
    } else {
      V::store(tmp, acc[r][0]);
      V::store(tmp + V::N, acc[r][1]);
      for (int j = 0; j < n; ++j) cr[j] += tmp[j];
    }
  }
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
