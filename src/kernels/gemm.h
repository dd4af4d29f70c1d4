// Dense row-major products for training: C[M,N] (+)= A[M,K] * B[K,N], with A or B optionally
// read transposed. Every training matmul (forward y = x W^T, dX = dY W, dW = dY^T X) is one
// of these. fp32 packs B into ctx's buffer, reads A in place and runs the register-blocked tile of
// the active ISA (simd/gemm-inl.h) split over ctx's pool; double (finite-difference checks),
// the scalar ISA and reference mode run the plain loop, which is also the twin the fast path
// is tested against. Must not be called from inside a job of ctx's pool (a serial context,
// Context::serial, may be used inside one).
#pragma once

#include <cstdint>

#include "kernels/context.h"

namespace dsv3::kernels {

//! C[M,N] = (accumulate ? C : 0) + op(A) op(B). op(A) is [M,K]: A is stored [M,K]
//! (trans_a false) or [K,M] (true); op(B) is [K,N]: B is [K,N] or [N,K].
template <class S>
void gemm(Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C,
          bool accumulate);

//! C[M,N] = (accumulate ? C : 0) + op(bf16(A)) op(bf16(B)): every input rounded to BF16 (ties
//! to even, kernels/bf16.h), exact products, fp32 sums. Gives the bits of gemm<float> on
//! rounded copies of A and B (the AVX512_BF16 tier packs BF16 pairs and runs vdpbf16ps in
//! the same summation order; the other tiers run exactly that), so every SIMD tier gives the
//! same bits; the scalar tier and reference mode give their own fp32 GEMM's (no K blocks).
//! One limit: vdpbf16ps flushes results below FLT_MIN (2^-126) to zero where FMAs keep
//! them subnormal, so sums that small may differ from the FMA tiers'.
void gemm_bf16(Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
               const float* B, float* C, bool accumulate);

//! The block edge of the FP8 GEMM's scales along the reduction dimension.
constexpr int64_t kFp8Block = 128;

//! An FP8 operand as kernels::fp8_quant makes it: e4m3 values (as fp32) stored as gemm()'s A
//! or B, and the scales of its tile_r x tile_c tiles, [ceil(rows / tile_r)][ceil(cols /
//! tile_c)] of the stored matrix. The tile edge along the reduction dimension must be
//! kFp8Block; the other edge is free (1 for activations, 128 for weights). The codes may
//! instead be given as their one-byte encodings (e4m3_to_bytes; codes null): the GEMM
//! packs them as they are, with the same results.
struct Fp8Matrix {
  const float* codes;
  const float* scales;
  int64_t tile_r, tile_c;
  const uint8_t* bytes = nullptr;
};

//! The DeepSeek-V3 report's FP8 GEMM (§3.3): C[M,N] = (accumulate ? C : 0) + the sum over
//! blocks of kFp8Block along K, in order, of (S * scale of A's row tile) * scale of B's
//! column tile, where S is the block's fp32 sum of exact e4m3 products in k order, added to
//! C one block at a time (the report promotes each 128-element partial sum to fp32 with
//! its scales). The codes must be e4m3 values (fp8_quant's): vdpbf16ps runs it where the
//! CPU has AVX512_BF16, reading them as BF16 (exact; their products, at least 2^-18, are
//! exact in fp32 and never subnormal), and every tier gives gemm_fp8_ref's bits.
void gemm_fp8(Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Fp8Matrix& A,
              const Fp8Matrix& B, float* C, bool accumulate);
void gemm_fp8_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Fp8Matrix& A,
                  const Fp8Matrix& B, float* C, bool accumulate);

//! The plain loop (the scalar twin), on the calling thread.
template <class S>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C,
              bool accumulate);

}  // namespace dsv3::kernels
