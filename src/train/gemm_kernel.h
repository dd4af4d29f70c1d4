// The fp32 GEMM micro-kernel, instantiated once per ISA (gemm_avx2.cc, gemm_avx512.cc) from a
// vector-type policy V. C tile of kMr rows x 2 vectors stays in registers over the whole K
// loop; B arrives packed as [K][2*V::N] panels, A as [K][kMr] slivers, so both stream.
#pragma once

#include <cstdint>

namespace dsv3::train::gemm_detail {

constexpr int kMr = 6;  // 12 accumulators + 2 B vectors + 1 broadcast fit 16 registers

//! C[kMr, 2*V::N] (+)= Apack[K][kMr] * Bpack[K][2*V::N]; rows >= m and cols >= n are not
//! stored (the packs are zero padded).
template <class V>
void micro_kernel(int64_t K, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n) {
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

using MicroKernel = void (*)(int64_t K, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n);

}  // namespace dsv3::train::gemm_detail
