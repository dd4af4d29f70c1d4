// The training GEMM's register tile, written once over the vector traits V of the including
// translation unit (simd/avx2.cc, simd/avx512.cc). Include only from those. The packing and
// the split over threads are gemm.cc's; this is only the inner loop.
#pragma once

#include <cstdint>

#include "kernels/simd/table.h"

namespace dsv3::kernels::DSV3_SIMD_NS {

// C[kGemmMr, 2*V::N] (add ? C : 0) + A[kGemmMr, K] * Bpack[K][2*V::N], with element (r, k) of A read
// in place at a[r * a_row + k * a_k] (a row-major A, or a transposed one, needs no packing):
// the C tile stays in registers over the whole K loop (12 accumulators + 2 B vectors + 1
// broadcast fit 16 registers); rows >= m read row m - 1 (in bounds) and are not stored, and
// cols >= n are not stored (the B pack is zero padded).
inline void gemm_tile(int64_t K, const float* a, int64_t a_row, int64_t a_k, const float* bp, float* c, int64_t ldc,
                      int m, int n, bool add) {
  constexpr int kMr = kGemmMr;
  typename V::F acc[kMr][2];
  const float* row[kMr];
  for (int r = 0; r < kMr; ++r) {
    acc[r][0] = acc[r][1] = V::zero();
    row[r] = a + int64_t(r < m ? r : m - 1) * a_row;
  }
  for (int64_t k = 0; k < K; ++k) {
    const typename V::F b0 = V::load(bp), b1 = V::load(bp + V::N);
    const int64_t off = k * a_k;
    for (int r = 0; r < kMr; ++r) {
      const typename V::F av = V::set1(row[r][off]);
      acc[r][0] = V::fma(av, b0, acc[r][0]);
      acc[r][1] = V::fma(av, b1, acc[r][1]);
    }
    bp += 2 * V::N;
  }
  // add: C += the tile; else C = 0 + the tile (the same bits as adding to a zeroed C, -0
  // included, without reading C or zeroing it first).
  alignas(64) float tmp[2 * V::N];
  for (int r = 0; r < m; ++r) {
    float* cr = c + r * ldc;
    if (n == 2 * V::N) {
      V::store(cr, V::add(add ? V::load(cr) : V::zero(), acc[r][0]));
      V::store(cr + V::N, V::add(add ? V::load(cr + V::N) : V::zero(), acc[r][1]));
    } else {
      V::store(tmp, acc[r][0]);
      V::store(tmp + V::N, acc[r][1]);
      for (int j = 0; j < n; ++j) cr[j] = (add ? cr[j] : 0.0f) + tmp[j];
    }
  }
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
