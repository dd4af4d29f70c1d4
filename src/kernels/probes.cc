#include "kernels/probes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/simd/table.h"

namespace dsv3::kernels {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Sums `streams` equal parts of [p, p + n) in lockstep, optionally prefetching 4 KB ahead
// in each: a few concurrent streams per core is what it takes to reach the memory's read
// limit (one stream per core falls 10-25% short on these machines).
uint64_t read_streams(const uint64_t* p, int64_t n, int streams, bool prefetch) {
  const int64_t per = n / streams;
  uint64_t acc[8] = {};
  for (int64_t k = 0; k < per; k += 8)
    for (int s = 0; s < streams; ++s) {
      const uint64_t* q = p + s * per + k;
      if (prefetch) __builtin_prefetch(q + 512);
      for (int j = 0; j < 8; ++j) acc[j] += q[j];
    }
  uint64_t r = 0;
  for (uint64_t a : acc) r ^= a;
  return r;
}

}  // namespace

double probe_fma_gflops(double seconds) {
  const SimdKernels* k = active_simd();
  const int lanes = k ? k->lanes : 1;
  volatile float sink = 0;
  int64_t iters = 1 << 16;
  for (;;) {
    const auto t0 = Clock::now();
    if (k) {
      sink = sink + k->fma_probe(iters);
    } else {
      float a[12];
      for (int i = 0; i < 12; ++i) a[i] = float(i);
      for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < 12; ++i) a[i] = std::fma(a[i], 0.999999f, 1e-7f);
      for (int i = 0; i < 12; ++i) sink = sink + a[i];
    }
    const double s = since(t0);
    if (s >= seconds) return double(iters) * 12.0 * lanes * 2.0 / s / 1e9;
    iters *= 2;
  }
}

namespace {

// The sum of probe(seconds) over every pool thread, all running at once.
double on_every_thread(ThreadPool& pool, double (*probe)(double), double seconds) {
  std::vector<double> g(size_t(pool.size()), 0.0);
  pool.parallel_for(pool.size(), [&](int th, int64_t, int64_t) { g[size_t(th)] = probe(seconds); });
  double s = 0;
  for (double v : g) s += v;
  return s;
}

double probe_bf16_gflops(double seconds) {
  const SimdKernels* k = active_simd();
  if (!k) return 0;  // the portable path has no BF16 kernel of its own (it runs the twin)
  volatile float sink = 0;
  for (int64_t iters = 1 << 14;; iters *= 2) {
    const auto t0 = Clock::now();
    sink = sink + k->bf16_probe(iters);
    const double s = since(t0);
    if (s >= seconds) return double(iters) * 12.0 * 64.0 / s / 1e9;
  }
}

}  // namespace

double probe_fma_gflops_all(ThreadPool& pool, double seconds) {
  return on_every_thread(pool, probe_fma_gflops, seconds);
}

double probe_bf16_gflops_all(ThreadPool& pool, double seconds) {
  return on_every_thread(pool, probe_bf16_gflops, seconds);
}

double probe_read_gb_per_s(ThreadPool& pool) {
  const int64_t n = int64_t(1) << 27;  // 8-byte words
  std::vector<uint64_t> buf(size_t(n), 1);
  std::vector<uint64_t> sink(size_t(pool.size()) * 8, 0);  // a cache line per thread
  double best = 0;
  for (int streams : {1, 2, 4, 8})
    for (bool prefetch : {false, true})
      for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = Clock::now();
        pool.parallel_for(pool.size(), [&](int th, int64_t, int64_t) {
          const int64_t part = n / pool.size();
          sink[size_t(th) * 8] += read_streams(buf.data() + th * part, part, streams, prefetch);
        });
        best = std::max(best, double(n / pool.size() * pool.size()) * 8 / since(t0) / 1e9);
      }
  return best;
}

}  // namespace dsv3::kernels
