#include "train/loss.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/vector_ops.h"

namespace dsv3::train {
namespace {

// The largest of z[0..n) (n > 0), in eight lanes the compiler vectorizes (max is exact, so
// the lanes change nothing but the speed).
template <class S>
S row_max(const S* z, int64_t n) {
  S lane[8];
  for (int j = 0; j < 8; ++j) lane[j] = z[0];
  int64_t v = 0;
  for (; v + 8 <= n; v += 8)
    for (int j = 0; j < 8; ++j) lane[j] = z[v + j] > lane[j] ? z[v + j] : lane[j];
  for (; v < n; ++v) lane[0] = z[v] > lane[0] ? z[v] : lane[0];
  S m = lane[0];
  for (int j = 1; j < 8; ++j) m = lane[j] > m ? lane[j] : m;
  return m;
}

}  // namespace

template <class S>
double cross_entropy(kernels::Context& ctx, const S* logits, const int32_t* targets, int64_t N, int64_t V, double scale,
                     S* dlogits, const uint8_t* mask) {
  if (N <= 0) return 0.0;
  const int64_t counted = mask ? std::count_if(mask, mask + N, [](uint8_t m) { return m != 0; }) : N;
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  ctx.pool().parallel_for(N, [&](int, int64_t r0, int64_t r1) {
    // exp(z - max) of a row, kept for the gradient: softmax = e / sum, one exp per logit.
    // fp32 takes the vectorized exp (kernels::exp_n), double (the finite-difference checks)
    // the library's; the sum is in double either way.
    std::vector<S> e(static_cast<size_t>(V));
    for (int64_t r = r0; r < r1; ++r) {
      if (mask && !mask[r]) {
        if (dlogits) std::fill(dlogits + r * V, dlogits + (r + 1) * V, S(0));
        continue;
      }
      const S* z = logits + r * V;
      const S m = row_max(z, V);
      for (int64_t v = 0; v < V; ++v) e[size_t(v)] = z[v] - m;
      if constexpr (std::is_same_v<S, float>) {
        kernels::exp_n(e.data(), V);
      } else {
        for (S& x : e) x = std::exp(x);
      }
      // Eight running sums (the compiler vectorizes them; the order is fixed per row).
      double part[8] = {};
      int64_t v8 = 0;
      for (; v8 + 8 <= V; v8 += 8)
        for (int j = 0; j < 8; ++j) part[j] += double(e[size_t(v8 + j)]);
      double sum = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
      for (; v8 < V; ++v8) sum += double(e[size_t(v8)]);
      const double lse = std::log(sum) + double(m);
      row_loss[size_t(r)] = lse - double(z[targets[r]]);
      if (!dlogits) continue;
      S* d = dlogits + r * V;
      const S k = S(scale / double(counted) / sum);
      for (int64_t v = 0; v < V; ++v) d[v] = e[size_t(v)] * k;
      d[targets[r]] -= S(scale / double(counted));
    }
  });
  if (counted == 0) return 0.0;
  double total = 0;
  for (double l : row_loss) total += l;
  return total / double(counted);
}

template <class S>
DistillTerms distill_cross_entropy(kernels::Context& ctx, const S* logits, const float* teacher, const int32_t* targets,
                                   int64_t N, int64_t V, double weight, double temperature, double scale, S* dlogits,
                                   const uint8_t* mask) {
  DistillTerms out;
  if (N <= 0) return out;
  const int64_t counted = mask ? std::count_if(mask, mask + N, [](uint8_t m) { return m != 0; }) : N;
  const double T = temperature;
  std::vector<double> row_ce(static_cast<size_t>(N), 0.0), row_kl(static_cast<size_t>(N), 0.0);
  ctx.pool().parallel_for(N, [&](int, int64_t r0, int64_t r1) {
    std::vector<double> ps(static_cast<size_t>(V)), pt(static_cast<size_t>(V));
    for (int64_t r = r0; r < r1; ++r) {
      if (mask && !mask[r]) {
        if (dlogits) std::fill(dlogits + r * V, dlogits + (r + 1) * V, S(0));
        continue;
      }
      const S* z = logits + r * V;
      const float* t = teacher + r * V;
      // log-sum-exps of z, z / T and t / T.
      const double zm = double(*std::max_element(z, z + V)), tm = double(*std::max_element(t, t + V));
      double s1 = 0, sT = 0, tT = 0;
      for (int64_t v = 0; v < V; ++v) {
        s1 += std::exp(double(z[v]) - zm);
        sT += std::exp((double(z[v]) - zm) / T);
        tT += std::exp((double(t[v]) - tm) / T);
      }
      const double lse1 = std::log(s1) + zm, lseT = std::log(sT) + zm / T, lteT = std::log(tT) + tm / T;
      double kl = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double log_ps = double(z[v]) / T - lseT, log_pt = double(t[v]) / T - lteT;
        ps[size_t(v)] = std::exp(log_ps);
        pt[size_t(v)] = std::exp(log_pt);
        kl += pt[size_t(v)] * (log_pt - log_ps);
      }
      row_kl[size_t(r)] = kl;
      row_ce[size_t(r)] = lse1 - double(z[targets[r]]);
      if (!dlogits) continue;
      S* d = dlogits + r * V;
      const double k = scale / double(counted);
      for (int64_t v = 0; v < V; ++v)
        d[v] = S(k * ((1 - weight) * std::exp(double(z[v]) - lse1) + weight * T * (ps[size_t(v)] - pt[size_t(v)])));
      d[targets[r]] -= S(k * (1 - weight));
    }
  });
  if (counted == 0) return out;
  for (int64_t r = 0; r < N; ++r) {
    out.ce += row_ce[size_t(r)];
    out.kl += row_kl[size_t(r)];
  }
  out.ce /= double(counted);
  out.kl /= double(counted);
  out.loss = (1 - weight) * out.ce + weight * T * T * out.kl;
  return out;
}

template DistillTerms distill_cross_entropy<float>(kernels::Context&, const float*, const float*, const int32_t*, int64_t,
                                                   int64_t, double, double, double, float*, const uint8_t*);
template DistillTerms distill_cross_entropy<double>(kernels::Context&, const double*, const float*, const int32_t*,
                                                    int64_t, int64_t, double, double, double, double*, const uint8_t*);

template double cross_entropy<float>(kernels::Context&, const float*, const int32_t*, int64_t, int64_t, double, float*,
                                     const uint8_t*);
template double cross_entropy<double>(kernels::Context&, const double*, const int32_t*, int64_t, int64_t, double,
                                      double*, const uint8_t*);

}  // namespace dsv3::train
