// The AVX2 + FMA + F16C instantiation of every fast kernel (matrix products, attention, the
// training GEMM tile, the FMA probe). Built with this ISA's flags (CMakeLists.txt); only
// called through its table after a CPUID check (isa.cc).
#if defined(__x86_64__) || defined(_M_X64)
#include "kernels/simd/traits_avx2.h"

#define DSV3_SIMD_NS avx2
#include "kernels/simd/kernels-inl.h"

const dsv3::kernels::SimdKernels dsv3::kernels::kAvx2Kernels = DSV3_SIMD_KERNEL_TABLE(avx2);
#endif
