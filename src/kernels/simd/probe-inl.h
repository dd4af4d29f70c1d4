// The FMA peak probe, written once over the vector traits V of the including translation
// unit (simd/avx2.cc, simd/avx512.cc). Include only from those.
#pragma once

#include <cstdint>

namespace dsv3::kernels::DSV3_SIMD_NS {

// Peak FMA probe: 12 independent chains hide the FMA latency; returns a value that depends
// on every chain so nothing is optimised away. FLOPs = iters * 12 * N * 2.
inline float fma_probe(int64_t iters) {
  typename V::F a[12];
  for (int i = 0; i < 12; ++i) a[i] = V::set1(float(i) * 1e-3f);
  const typename V::F m = V::set1(0.999999f), c = V::set1(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = V::fma(a[i], m, c);
  typename V::F s = a[0];
  for (int i = 1; i < 12; ++i) s = V::add(s, a[i]);
  return V::sum(s);
}

// The BF16 dot-product peak: 12 chains of BF16 steps (bf16.h: 32 multiply-adds each, by
// vdpbf16ps or its emulation). FLOPs = iters * 12 * 64.
inline float bf16_probe(int64_t iters) {
  alignas(64) uint16_t a[32], b[32];
  for (int i = 0; i < 32; ++i) {
    a[i] = 0x3F80;            // 1.0
    b[i] = uint16_t(0x3300);  // 2^-25: the sums stay far from overflow
  }
  typename B::Acc acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = B::zero();
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = B::dp(acc[i], a, b);
  float s = 0;
  for (int i = 0; i < 12; ++i) s += B::reduce(acc[i]);
  return s;
}

}  // namespace dsv3::kernels::DSV3_SIMD_NS
