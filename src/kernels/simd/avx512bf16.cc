// The AVX-512 instantiation of every fast kernel with the native BF16 products: vdpbf16ps
// (AVX512_BF16) and the FP8 widening by byte tables (AVX512_VBMI), as Zen 4/5 and Sapphire
// Rapids have. Built with these flags (CMakeLists.txt); only called through its table after
// a CPUID check (isa.cc).
#if defined(__x86_64__) || defined(_M_X64)
#include "kernels/simd/traits_avx512bf16.h"

#define DSV3_SIMD_NS avx512bf16
#include "kernels/simd/kernels-inl.h"

const dsv3::kernels::SimdKernels dsv3::kernels::kAvx512Bf16Kernels = DSV3_SIMD_KERNEL_TABLE(avx512bf16);
#endif
