#include "kernels/gemm.h"

#include <algorithm>
#include <functional>
#include <type_traits>

#include "kernels/isa.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels {
namespace {

constexpr int64_t kMr = kGemmMr;
// K is cut into blocks so one packed B panel (kKc x 2 vectors) stays in L1/L2 while every
// row sliver of A streams past it.
constexpr int64_t kKc = 256;

// Products too small to repay waking the pool's workers run on the calling thread.
void for_range(ThreadPool& pool, int64_t n, double flops, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (flops < 2e5) {
    fn(0, 0, n);
  } else {
    pool.parallel_for(n, fn);
  }
}

// Rows [i0, i1) of C += op(A) op(B), k in order for every element: the result does not
// depend on how rows are split.
template <class S>
void plain_rows(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C, int64_t i0,
                int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    S* c = C + i * N;
    for (int64_t k = 0; k < K; ++k) {
      const S a = ta ? A[k * M + i] : A[i * K + k];
      if (a == S(0)) continue;
      if (tb) {
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * K + k];
      } else {
        const S* b = B + k * N;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      }
    }
  }
}

void gemm_simd(Context& ctx, const SimdKernels& simd, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               const float* A, const float* B, float* C, bool accumulate) {
  ThreadPool& pool = ctx.pool();
  const int nr = simd.gemm_nr;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int64_t nI = (M + kMr - 1) / kMr, nJ = (N + nr - 1) / nr;
  // B packed as [nJ][K][nr], zero padded at the edges, in the context's buffer (kept between
  // calls: fresh multi-MB buffers per product cost more in page faults and zeroing than the
  // packing itself). A is read in place by the tile (row-major or transposed, by strides):
  // packing it cost about a quarter of the tiles' own time in training's small products.
  float* const bp = ctx.pack_b(size_t(nJ * K * nr));
  const int64_t a_row = ta ? 1 : K, a_k = ta ? M : 1;
  for_range(pool, nJ, flops, [&](int, int64_t j0, int64_t j1) {
    for (int64_t bj = j0; bj < j1; ++bj) {
      float* dst = &bp[size_t(bj * K * nr)];
      const int64_t c0 = bj * nr, w = std::min<int64_t>(nr, N - c0);
      for (int64_t k = 0; k < K; ++k) {
        float* d = dst + k * nr;
        if (tb) {
          for (int64_t j = 0; j < w; ++j) d[j] = B[(c0 + j) * K + k];
        } else {
          std::copy(B + k * N + c0, B + k * N + c0 + w, d);
        }
        std::fill(d + w, d + nr, 0.0f);
      }
    }
  });
  // Split whichever tile dimension gives every thread work; the other stays whole.
  const bool by_cols = nJ >= 2 * int64_t(pool.size()) || nJ >= nI;
  for_range(pool, by_cols ? nJ : nI, flops, [&](int, int64_t p0, int64_t p1) {
    const int64_t j0 = by_cols ? p0 : 0, j1 = by_cols ? p1 : nJ;
    const int64_t i0 = by_cols ? 0 : p0, i1 = by_cols ? nI : p1;
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      for (int64_t bj = j0; bj < j1; ++bj) {
        const float* b = &bp[size_t((bj * K + k0) * nr)];
        const int n = int(std::min<int64_t>(nr, N - bj * nr));
        for (int64_t bi = i0; bi < i1; ++bi) {
          const int m = int(std::min<int64_t>(kMr, M - bi * kMr));
          simd.gemm_tile(kc, A + bi * kMr * a_row + k0 * a_k, a_row, a_k, b, C + bi * kMr * N + bj * nr, N, m, n,
                         accumulate || k0 > 0);
        }
      }
    }
  });
}

}  // namespace

template <class S>
void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (!accumulate) std::fill(C, C + M * N, S(0));
  if (K > 0) plain_rows(ta, tb, M, N, K, A, B, C, 0, M);
}

template <class S>
void gemm(Context& ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const S* A, const S* B, S* C,
          bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if constexpr (std::is_same_v<S, float>) {
    if (K > 0 && !reference_kernels())  // the tiles store the first K block: C needs no zeroing
      if (const SimdKernels* k = active_simd()) return gemm_simd(ctx, *k, ta, tb, M, N, K, A, B, C, accumulate);
  }
  if (!accumulate) std::fill(C, C + M * N, S(0));
  if (K <= 0) return;
  for_range(ctx.pool(), M, 2.0 * double(M) * double(N) * double(K),
            [&](int, int64_t i0, int64_t i1) { plain_rows(ta, tb, M, N, K, A, B, C, i0, i1); });
}

template void gemm<float>(Context&, bool, bool, int64_t, int64_t, int64_t, const float*, const float*, float*, bool);
template void gemm<double>(Context&, bool, bool, int64_t, int64_t, int64_t, const double*, const double*, double*,
                           bool);
template void gemm_ref<float>(bool, bool, int64_t, int64_t, int64_t, const float*, const float*, float*, bool);
template void gemm_ref<double>(bool, bool, int64_t, int64_t, int64_t, const double*, const double*, double*, bool);

}  // namespace dsv3::kernels
