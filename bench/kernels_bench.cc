// Google Benchmark for the matrix kernels: FP8 / BF16 weights, decode (T=1) and prefill
// (T=64) shapes from the bench preset, on every ISA this CPU supports. Reports weight bytes/s
// (decode) and FLOP/s (prefill).
#include <benchmark/benchmark.h>

#include <vector>

#include "base/numeric.h"
#include "base/rng.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"

namespace dsv3 {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightMatrix w;
};

Weights make(DType dt, int64_t rows, int64_t cols) {
  Weights m;
  Rng rng(1);
  m.bytes.resize(size_t(rows * cols) * dtype_size(dt));
  for (size_t i = 0; i < m.bytes.size(); ++i) m.bytes[i] = uint8_t(rng.next() & 0x77);  // finite e4m3 / bf16 bytes
  m.w = WeightMatrix{"w", dt, m.bytes.data(), rows, cols};
  if (dt == DType::F8_E4M3) {
    m.w.scale_cols = (cols + 127) / 128;
    m.scales.assign(size_t(((rows + 127) / 128) * m.w.scale_cols), 0.01f);
    m.w.scale = m.scales.data();
  }
  return m;
}

void BM_Matmul(benchmark::State& state, DType dt, kernels::Isa isa) {
  if (!kernels::set_isa(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int64_t rows = state.range(0), cols = state.range(1), T = state.range(2);
  const Weights m = make(dt, rows, cols);
  std::vector<float> x(size_t(T * cols), 0.5f), y(size_t(T * rows));
  for (auto _ : state) {
    kernels::matmul(m.w, x.data(), T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] =
      benchmark::Counter(double(m.w.bytes()) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(rows * cols * T) * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// Decode as the model sees it: every call reads weights that are not in any cache (a set of
// matrices larger than the last-level cache, visited in turn), so this measures the kernels
// against memory bandwidth rather than cache bandwidth. Args: rows, cols, matrices.
void BM_MatvecCold(benchmark::State& state, DType dt, kernels::Isa isa) {
  if (!kernels::set_isa(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int64_t rows = state.range(0), cols = state.range(1), count = state.range(2);
  std::vector<Weights> ms;
  for (int64_t i = 0; i < count; ++i) ms.push_back(make(dt, rows, cols));
  std::vector<float> x(size_t(cols), 0.5f), y(static_cast<size_t>(rows));
  size_t next = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const WeightMatrix& w = ms[next].w;
    next = (next + 1) % ms.size();
    kernels::matmul(w, x.data(), 1, y.data());
    bytes += w.bytes();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(double(bytes) / 1e9, benchmark::Counter::kIsRate);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({1408, 2048, 1})->Args({2048, 1408, 1})->Args({10944, 2048, 1})->Args({1408, 2048, 64})
      ->Args({10944, 2048, 64})->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Matmul, fp8_avx512, DType::F8_E4M3, kernels::Isa::Avx512)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, fp8_avx2, DType::F8_E4M3, kernels::Isa::Avx2)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, fp8_scalar, DType::F8_E4M3, kernels::Isa::Scalar)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, bf16_avx512, DType::BF16, kernels::Isa::Avx512)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, bf16_avx2, DType::BF16, kernels::Isa::Avx2)->Apply(shapes);

// 64 routed experts' gates (FP8, 185 MB in all) and a vocabulary head (FP8 265 MB, BF16 530 MB).
BENCHMARK_CAPTURE(BM_MatvecCold, fp8_avx512, DType::F8_E4M3, kernels::Isa::Avx512)->Args({1408, 2048, 64})->Args({129280, 2048, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, fp8_avx2, DType::F8_E4M3, kernels::Isa::Avx2)->Args({1408, 2048, 64})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, bf16_avx512, DType::BF16, kernels::Isa::Avx512)->Args({129280, 2048, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, bf16_avx2, DType::BF16, kernels::Isa::Avx2)->Args({129280, 2048, 1})->UseRealTime();

}  // namespace
}  // namespace dsv3

BENCHMARK_MAIN();
