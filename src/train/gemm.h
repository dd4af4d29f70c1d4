// Dense row-major products for training: C[M,N] (+)= A[M,K] * B[K,N], with A or B optionally
// read transposed. Every training matmul (forward y = x W^T, dX = dY W, dW = dY^T X) is one
// of these. fp32 runs a packed, register-blocked SIMD kernel (AVX-512 or AVX2 + FMA, chosen
// by kernels::active_isa()) split over the global thread pool; double (finite-difference
// checks) runs a plain loop. Must not be called from inside ThreadPool::parallel_for.
#pragma once

#include <cstdint>

namespace dsv3::train {

//! C[M,N] = (accumulate ? C : 0) + op(A) op(B). op(A) is [M,K]: A is stored [M,K]
//! (trans_a false) or [K,M] (true); op(B) is [K,N]: B is [K,N] or [N,K].
template <class S>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C,
          bool accumulate);

}  // namespace dsv3::train
