// AVX-512 instantiation of the training GEMM micro-kernel; only entered after the CPUID
// check behind kernels::active_isa().
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "train/gemm_kernel.h"

namespace dsv3::train::gemm_detail {
namespace {
struct V16 {
  using F = __m512;
  static constexpr int N = 16;
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
};
}  // namespace
extern const int kAvx512Nr = 2 * V16::N;
extern const MicroKernel kAvx512Kernel = micro_kernel<V16>;
}  // namespace dsv3::train::gemm_detail
#endif
