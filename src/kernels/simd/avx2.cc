// The AVX2 + FMA + F16C instantiation of every fast kernel (matrix products, attention, the
// training GEMM tile, the FMA probe). Built with this ISA's flags (CMakeLists.txt); only
// called through its table after a CPUID check (isa.cc).
#if defined(__x86_64__) || defined(_M_X64)
#include "kernels/simd/traits_avx2.h"

#define DSV3_SIMD_NS avx2
#include "kernels/simd/attention-inl.h"
#include "kernels/simd/gemm-inl.h"
#include "kernels/simd/matmul-inl.h"
#include "kernels/simd/probe-inl.h"

namespace dsv3::kernels {
const SimdKernels kAvx2Kernels = {
    avx2::rows,          avx2::t_rows,    avx2::dot,       avx2::axpy, avx2::latent_scores,
    avx2::weighted_rows, avx2::gemm_tile, avx2::fma_probe, avx2::V::N, 2 * avx2::V::N,
};
}  // namespace dsv3::kernels
#endif
