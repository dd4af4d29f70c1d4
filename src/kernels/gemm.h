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
//! rounded copies of A and B, on every ISA (the AVX512_BF16 tier packs BF16 pairs and runs
//! vdpbf16ps in the same summation order; the others run exactly that).
void gemm_bf16(Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
               const float* B, float* C, bool accumulate);

//! The plain loop (the scalar twin), on the calling thread.
template <class S>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C,
              bool accumulate);

}  // namespace dsv3::kernels
