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

//! The plain loop (the scalar twin), on the calling thread.
template <class S>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C,
              bool accumulate);

}  // namespace dsv3::kernels
