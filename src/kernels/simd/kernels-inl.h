// Every fast kernel template, for the ISA translation unit that includes this after defining
// its vector traits V in namespace dsv3::kernels::DSV3_SIMD_NS (simd/avx2.cc, simd/avx512.cc, simd/avx512bf16.cc).
#pragma once

#include "kernels/simd/adamw-inl.h"
#include "kernels/simd/attention-inl.h"
#include "kernels/simd/gemm-inl.h"
#include "kernels/simd/gemm_bf16-inl.h"
#include "kernels/simd/latent_bf16-inl.h"
#include "kernels/simd/matmul-inl.h"
#include "kernels/simd/matmul_bf16-inl.h"
#include "kernels/simd/matmul_fp8-inl.h"
#include "kernels/simd/probe-inl.h"
#include "kernels/simd/quant-inl.h"

// The table of this ISA's instantiations.
#define DSV3_SIMD_KERNEL_TABLE(ns)                                                                              \
  SimdKernels {                                                                                                 \
    ns::rows, ns::rows_bf16, ns::kRowsFp8, ns::t_rows, ns::dot, ns::exp_poly_n, ns::axpy, ns::latent_scores, ns::weighted_rows, ns::latent_block_bf16, ns::gemm_tile, ns::kGemmBf16Pack, ns::kGemmBf16PackE4m3, ns::kGemmBf16Tile, ns::abs_max, ns::abs_max_of, ns::e4m3_scaled, ns::bf16_round_n, ns::e4m3_bytes, ns::e4m3_from_bytes, ns::adamw_update, ns::fma_probe, ns::bf16_probe, \
        ns::V::N, 2 * ns::V::N                                                                                  \
  }
