#include "train/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dsv3::train {

template <class S>
double cross_entropy(kernels::Context& ctx, const S* logits, const int32_t* targets, int64_t N, int64_t V, double scale,
                     S* dlogits, const uint8_t* mask) {
  if (N <= 0) return 0.0;
  const int64_t counted = mask ? std::count_if(mask, mask + N, [](uint8_t m) { return m != 0; }) : N;
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  ctx.pool().parallel_for(N, [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (mask && !mask[r]) {
        if (dlogits) std::fill(dlogits + r * V, dlogits + (r + 1) * V, S(0));
        continue;
      }
      const S* z = logits + r * V;
      const S m = *std::max_element(z, z + V);
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v] - m));
      const double lse = std::log(sum) + double(m);
      row_loss[size_t(r)] = lse - double(z[targets[r]]);
      if (!dlogits) continue;
      S* d = dlogits + r * V;
      const double k = scale / double(counted);
      for (int64_t v = 0; v < V; ++v) d[v] = S(std::exp(double(z[v]) - lse) * k);
      d[targets[r]] -= S(k);
    }
  });
  if (counted == 0) return 0.0;
  double total = 0;
  for (double l : row_loss) total += l;
  return total / double(counted);
}

template double cross_entropy<float>(kernels::Context&, const float*, const int32_t*, int64_t, int64_t, double, float*,
                                     const uint8_t*);
template double cross_entropy<double>(kernels::Context&, const double*, const int32_t*, int64_t, int64_t, double,
                                      double*, const uint8_t*);

}  // namespace dsv3::train
