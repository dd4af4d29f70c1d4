// The AVX-512 (F, BW, VL, DQ) + F16C instantiation of every fast kernel (matrix products,
// attention, the training GEMM tile, the FMA probe). Built with this ISA's flags
// (CMakeLists.txt); only called through its table after a CPUID check (isa.cc).
#if defined(__x86_64__) || defined(_M_X64)
#include "kernels/simd/traits_avx512.h"

#define DSV3_SIMD_NS avx512
#include "kernels/simd/attention-inl.h"
#include "kernels/simd/gemm-inl.h"
#include "kernels/simd/matmul-inl.h"
#include "kernels/simd/probe-inl.h"

namespace dsv3::kernels {
const SimdKernels kAvx512Kernels = {
    avx512::rows,          avx512::t_rows,    avx512::dot,       avx512::axpy, avx512::latent_scores,
    avx512::weighted_rows, avx512::gemm_tile, avx512::fma_probe, avx512::V::N, 2 * avx512::V::N,
};
}  // namespace dsv3::kernels
#endif
