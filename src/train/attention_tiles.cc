#include "train/attention_tiles.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/gemm.h"
#include "kernels/vector_ops.h"

namespace dsv3::train {
namespace {

// x[c] = exp(x[c]): fp32 by the vectorized kernel (kernels::exp_n), double by the library.
void exp_row(float* x, int64_t n) { kernels::exp_n(x, n); }
void exp_row(double* x, int64_t n) {
  for (int64_t c = 0; c < n; ++c) x[c] = std::exp(x[c]);
}

// Keys of tile [j0, j0 + bk) that row t may see (tiles are aligned, so j0 <= t).
inline int64_t visible(int64_t t, int64_t j0, int64_t bk) { return std::min(bk, t - j0 + 1); }

}  // namespace

template <class S>
void attention_tile_forward(kernels::Context& ctx, int64_t T, int64_t qk, int64_t vd, S scale, const S* q, const S* k,
                            const S* v, S* o, S* lse, TileScratch<S>& sc) {
  const int64_t B = kAttentionTile;
  sc.s.resize(size_t(B * B));
  sc.acc.resize(size_t(B * vd));
  sc.m.resize(size_t(B));
  sc.l.resize(size_t(B));
  for (int64_t i0 = 0; i0 < T; i0 += B) {
    const int64_t bq = std::min(B, T - i0);
    std::fill(sc.m.begin(), sc.m.end(), -std::numeric_limits<S>::infinity());
    std::fill(sc.l.begin(), sc.l.end(), S(0));
    std::fill(sc.acc.begin(), sc.acc.end(), S(0));
    for (int64_t j0 = 0; j0 < i0 + bq; j0 += B) {
      const int64_t bk = std::min(B, i0 + bq - j0);
      kernels::gemm<S>(ctx, false, true, bq, bk, qk, q + i0 * qk, k + j0 * qk, sc.s.data(), false);
      for (int64_t r = 0; r < bq; ++r) {
        S* row = &sc.s[size_t(r * bk)];
        const int64_t n = visible(i0 + r, j0, bk);
        S mx = sc.m[size_t(r)];
        for (int64_t c = 0; c < n; ++c) mx = std::max(mx, row[c] *= scale);
        const S alpha = std::exp(sc.m[size_t(r)] - mx);  // 0 on the first tile (m = -inf)
        for (int64_t c = 0; c < n; ++c) row[c] -= mx;
        exp_row(row, n);
        S sum = 0;
        for (int64_t c = 0; c < n; ++c) sum += row[c];
        std::fill(row + n, row + bk, S(0));
        sc.l[size_t(r)] = sc.l[size_t(r)] * alpha + sum;
        sc.m[size_t(r)] = mx;
        for (int64_t c = 0; c < vd; ++c) sc.acc[size_t(r * vd + c)] *= alpha;
      }
      kernels::gemm<S>(ctx, false, false, bq, vd, bk, sc.s.data(), v + j0 * vd, sc.acc.data(), true);
    }
    for (int64_t r = 0; r < bq; ++r) {
      const S inv = S(1) / sc.l[size_t(r)];
      for (int64_t c = 0; c < vd; ++c) o[(i0 + r) * vd + c] = sc.acc[size_t(r * vd + c)] * inv;
      lse[i0 + r] = sc.m[size_t(r)] + std::log(sc.l[size_t(r)]);
    }
  }
}

template <class S>
void attention_tile_backward(kernels::Context& ctx, int64_t T, int64_t qk, int64_t vd, S scale, const S* q, const S* k,
                             const S* v, const S* o, const S* d_o, const S* lse, S* dq, S* dk, S* dv,
                             TileScratch<S>& sc) {
  const int64_t B = kAttentionTile;
  sc.s.resize(size_t(B * B));
  sc.dp.resize(size_t(B * B));
  // d[t] = do_t . o_t = sum_j p_tj (do_t . v_j): the softmax backward's row term.
  sc.d.resize(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    S s = 0;
    for (int64_t c = 0; c < vd; ++c) s += d_o[t * vd + c] * o[t * vd + c];
    sc.d[size_t(t)] = s;
  }
  std::fill(dq, dq + T * qk, S(0));
  std::fill(dk, dk + T * qk, S(0));
  std::fill(dv, dv + T * vd, S(0));
  for (int64_t j0 = 0; j0 < T; j0 += B) {
    const int64_t bk = std::min(B, T - j0);
    for (int64_t i0 = j0; i0 < T; i0 += B) {
      const int64_t bq = std::min(B, T - i0);
      S* p = sc.s.data();
      S* ds = sc.dp.data();
      kernels::gemm<S>(ctx, false, true, bq, bk, qk, q + i0 * qk, k + j0 * qk, p, false);
      for (int64_t r = 0; r < bq; ++r) {
        S* row = p + r * bk;
        const int64_t n = visible(i0 + r, j0, bk);
        for (int64_t c = 0; c < n; ++c) row[c] = row[c] * scale - lse[i0 + r];
        exp_row(row, n);
        std::fill(row + n, row + bk, S(0));
      }
      kernels::gemm<S>(ctx, true, false, bk, vd, bq, p, d_o + i0 * vd, dv + j0 * vd, true);  // dV += P^T dO
      kernels::gemm<S>(ctx, false, true, bq, bk, vd, d_o + i0 * vd, v + j0 * vd, ds, false);  // dP = dO V^T
      for (int64_t r = 0; r < bq; ++r) {
        const S d = sc.d[size_t(i0 + r)];
        for (int64_t c = 0; c < bk; ++c) ds[r * bk + c] = p[r * bk + c] * (ds[r * bk + c] - d) * scale;
      }
      kernels::gemm<S>(ctx, false, false, bq, qk, bk, ds, k + j0 * qk, dq + i0 * qk, true);  // dQ += dS K
      kernels::gemm<S>(ctx, true, false, bk, qk, bq, ds, q + i0 * qk, dk + j0 * qk, true);   // dK += dS^T Q
    }
  }
}

#define DSV3_TILES(S)                                                                                              \
  template void attention_tile_forward<S>(kernels::Context&, int64_t, int64_t, int64_t, S, const S*, const S*,     \
                                          const S*, S*, S*, TileScratch<S>&);                                      \
  template void attention_tile_backward<S>(kernels::Context&, int64_t, int64_t, int64_t, S, const S*, const S*,    \
                                           const S*, const S*, const S*, const S*, S*, S*, S*, TileScratch<S>&);
DSV3_TILES(float)
DSV3_TILES(double)
#undef DSV3_TILES

}  // namespace dsv3::train
