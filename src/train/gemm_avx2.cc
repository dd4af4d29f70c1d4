// AVX2 + FMA instantiation of the training GEMM micro-kernel; only entered after the CPUID
// check behind kernels::active_isa().
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "train/gemm_kernel.h"

namespace dsv3::train::gemm_detail {
namespace {
struct V8 {
  using F = __m256;
  static constexpr int N = 8;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
};
}  // namespace
extern const int kAvx2Nr = 2 * V8::N;
extern const MicroKernel kAvx2Kernel = micro_kernel<V8>;
}  // namespace dsv3::train::gemm_detail
#endif
