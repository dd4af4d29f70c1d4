// The tiled attention core of the trainer (train/attention_tiles.h) against the plain
// [T, T] softmax form written out below, in double, across lengths that end inside a tile,
// on a tile boundary and after several tiles; and in float, where only rounding differs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/rng.h"
#include "test_util.h"
#include "train/attention_tiles.h"

namespace dsv3::train {
namespace {

kernels::Context& ctx() {
  static kernels::Context c(testutil::pool());
  return c;
}

template <class S>
std::vector<S> random_vec(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<S> v(n);
  for (S& x : v) x = S(rng.symmetric(1.0f));
  return v;
}

// The textbook form: P = softmax(scale q k^T) with the causal mask, o = P v; backward
// dv = P^T do, dP = do v^T, dS = P (dP - rowsum(P dP)) scale, dq = dS k, dk = dS^T q.
struct Naive {
  std::vector<double> o, lse, dq, dk, dv;
};

Naive naive(int64_t T, int64_t qk, int64_t vd, double scale, const std::vector<double>& q,
            const std::vector<double>& k, const std::vector<double>& v, const std::vector<double>& d_o) {
  Naive n{std::vector<double>(size_t(T * vd)), std::vector<double>(size_t(T)), std::vector<double>(size_t(T * qk)),
          std::vector<double>(size_t(T * qk)), std::vector<double>(size_t(T * vd))};
  std::vector<double> p(size_t(T * T), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    double mx = -INFINITY;
    for (int64_t j = 0; j <= t; ++j) {
      double s = 0;
      for (int64_t c = 0; c < qk; ++c) s += q[size_t(t * qk + c)] * k[size_t(j * qk + c)];
      p[size_t(t * T + j)] = s * scale;
      mx = std::max(mx, s * scale);
    }
    double sum = 0;
    for (int64_t j = 0; j <= t; ++j) sum += (p[size_t(t * T + j)] = std::exp(p[size_t(t * T + j)] - mx));
    for (int64_t j = 0; j <= t; ++j) p[size_t(t * T + j)] /= sum;
    n.lse[size_t(t)] = mx + std::log(sum);
    for (int64_t j = 0; j <= t; ++j)
      for (int64_t c = 0; c < vd; ++c) n.o[size_t(t * vd + c)] += p[size_t(t * T + j)] * v[size_t(j * vd + c)];
  }
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> dp(size_t(t + 1));
    double rowsum = 0;
    for (int64_t j = 0; j <= t; ++j) {
      double s = 0;
      for (int64_t c = 0; c < vd; ++c) s += d_o[size_t(t * vd + c)] * v[size_t(j * vd + c)];
      dp[size_t(j)] = s;
      rowsum += p[size_t(t * T + j)] * s;
    }
    for (int64_t j = 0; j <= t; ++j) {
      const double pj = p[size_t(t * T + j)];
      for (int64_t c = 0; c < vd; ++c) n.dv[size_t(j * vd + c)] += pj * d_o[size_t(t * vd + c)];
      const double ds = pj * (dp[size_t(j)] - rowsum) * scale;
      for (int64_t c = 0; c < qk; ++c) {
        n.dq[size_t(t * qk + c)] += ds * k[size_t(j * qk + c)];
        n.dk[size_t(j * qk + c)] += ds * q[size_t(t * qk + c)];
      }
    }
  }
  return n;
}

template <class S>
double max_diff(const std::vector<S>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

template <class S>
void check(int64_t T, double tol) {
  const int64_t qk = 24, vd = 16;
  const double scale = 0.7;
  const auto q = random_vec<double>(size_t(T * qk), 1), k = random_vec<double>(size_t(T * qk), 2);
  const auto v = random_vec<double>(size_t(T * vd), 3), d_o = random_vec<double>(size_t(T * vd), 4);
  const Naive ref = naive(T, qk, vd, scale, q, k, v, d_o);
  auto cast = [](const std::vector<double>& x) { return std::vector<S>(x.begin(), x.end()); };
  const auto qs = cast(q), ks = cast(k), vs = cast(v), dos = cast(d_o);
  std::vector<S> o(static_cast<size_t>(T * vd)), lse(static_cast<size_t>(T));
  // The backward overwrites its outputs, whatever they held.
  std::vector<S> dq(static_cast<size_t>(T * qk), S(7)), dk(static_cast<size_t>(T * qk), S(7));
  std::vector<S> dv(static_cast<size_t>(T * vd), S(7));
  TileScratch<S> scratch;
  attention_tile_forward<S>(ctx(), T, qk, vd, S(scale), qs.data(), ks.data(), vs.data(), o.data(), lse.data(),
                            scratch);
  attention_tile_backward<S>(ctx(), T, qk, vd, S(scale), qs.data(), ks.data(), vs.data(), o.data(), dos.data(),
                             lse.data(), dq.data(), dk.data(), dv.data(), scratch);
  EXPECT_LT(max_diff(o, ref.o), tol) << "T=" << T;
  EXPECT_LT(max_diff(lse, ref.lse), tol) << "T=" << T;
  EXPECT_LT(max_diff(dq, ref.dq), tol) << "T=" << T;
  EXPECT_LT(max_diff(dk, ref.dk), tol) << "T=" << T;
  EXPECT_LT(max_diff(dv, ref.dv), tol) << "T=" << T;
}

TEST(AttentionTiles, DoubleMatchesTheFullMatrixForm) {
  for (int64_t T : {int64_t(1), int64_t(5), kAttentionTile, kAttentionTile + 1, 3 * kAttentionTile - 17})
    check<double>(T, 1e-11);
}

TEST(AttentionTiles, FloatMatchesUpToRounding) {
  for (int64_t T : {int64_t(7), 2 * kAttentionTile + 3}) check<float>(T, 2e-4);
}

}  // namespace
}  // namespace dsv3::train
