// Google Benchmark for the matrix kernels: FP8 / BF16 weights, decode (T=1) and prefill
// (T=64) shapes from the bench preset, on every ISA this CPU supports, in fp32 and bf16
// numerics (the `_bf16n` cases); cold (memory-bound)
// matrix-vector products; one MoE layer's decode step. Reports weight bytes/s (decode) and
// FLOP/s (prefill).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "base/numeric.h"
#include "base/rng.h"
#include "kernels/attention.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "model/mlp_batch.h"

namespace dsv3 {
namespace {

// The pool every benchmark runs on (all hardware threads).
ThreadPool& pool() {
  static ThreadPool p(0);
  return p;
}

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  kernels::WeightMatrix w;
};

Weights make(io::DType dt, int64_t rows, int64_t cols) {
  Weights m;
  Rng rng(1);
  m.bytes.resize(size_t(rows * cols) * io::dtype_size(dt));
  for (size_t i = 0; i < m.bytes.size(); ++i) m.bytes[i] = uint8_t(rng.next() & 0x77);  // finite e4m3 / bf16 bytes
  m.w = kernels::WeightMatrix{"w", dt, m.bytes.data(), rows, cols};
  if (dt == io::DType::F8_E4M3) {
    m.w.scale_cols = (cols + 127) / 128;
    m.scales.assign(size_t(((rows + 127) / 128) * m.w.scale_cols), 0.01f);
    m.w.scale = m.scales.data();
  }
  return m;
}

void BM_Matmul(benchmark::State& state, io::DType dt, kernels::Isa isa, kernels::Numerics n) {
  if (!kernels::set_isa(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int64_t rows = state.range(0), cols = state.range(1), T = state.range(2);
  const Weights m = make(dt, rows, cols);
  std::vector<float> x(size_t(T * cols), 0.5f), y(size_t(T * rows));
  kernels::Context ctx(pool());
  ctx.set_numerics(n);
  for (auto _ : state) {
    kernels::matmul(ctx, m.w, x.data(), T, y.data());
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
void BM_MatvecCold(benchmark::State& state, io::DType dt, kernels::Isa isa, kernels::Numerics n) {
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
  kernels::Context ctx(pool());
  ctx.set_numerics(n);
  for (auto _ : state) {
    const kernels::WeightMatrix& w = ms[next].w;
    next = (next + 1) % ms.size();
    kernels::matmul(ctx, w, x.data(), 1, y.data());
    bytes += w.bytes();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(double(bytes) / 1e9, benchmark::Counter::kIsRate);
}

// One MoE layer's decode step as the model runs it (run_mlps): 6 of 64 routed FP8 experts
// (1408 x 2048, chosen in turn so their weights are not cached) and two more experts'
// matrices standing in for the 2816-wide shared expert; all gate/up products, then all down
// products, in two pool jobs.
void BM_MoeDecodeCold(benchmark::State& state, kernels::Numerics n) {
  const int64_t D = 2048, I = 1408, E = 64, K = 6;
  std::vector<Weights> ws;
  for (int64_t i = 0; i < 3 * (E + 2); ++i)
    ws.push_back(make(io::DType::F8_E4M3, i % 3 == 2 ? D : I, i % 3 == 2 ? I : D));
  std::vector<model::MlpWeights> experts;
  for (int64_t e = 0; e < E + 2; ++e) experts.push_back(model::MlpWeights{ws[3 * e].w, ws[3 * e + 1].w, ws[3 * e + 2].w});
  std::vector<float> x(size_t(D), 0.5f), y(size_t((K + 2) * D));
  int64_t next = 0;
  uint64_t bytes = 0;
  model::Workspace work(pool());
  work.kernels.set_numerics(n);
  for (auto _ : state) {
    std::vector<model::MlpTask> tasks;
    for (int64_t k = 0; k < K + 2; ++k) {
      const model::MlpWeights& m = k < K ? experts[size_t((next + k * 11) % E)] : experts[size_t(E + k - K)];
      tasks.push_back(model::MlpTask{&m, x.data(), 1, &y[size_t(k * D)]});
      bytes += m.gate.bytes() + m.up.bytes() + m.down.bytes();
    }
    next = (next + 1) % E;
    model::run_mlps(work, tasks);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(double(bytes) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_MoeDecodeCold, fp32n, kernels::Numerics::Fp32)->UseRealTime();
BENCHMARK_CAPTURE(BM_MoeDecodeCold, bf16n, kernels::Numerics::Bf16)->UseRealTime();

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({1408, 2048, 1})->Args({2048, 1408, 1})->Args({10944, 2048, 1})->Args({1408, 2048, 64})
      ->Args({10944, 2048, 64})->UseRealTime();
}

constexpr kernels::Numerics kF = kernels::Numerics::Fp32, kB = kernels::Numerics::Bf16;
using kernels::Isa;
constexpr io::DType kFp8 = io::DType::F8_E4M3, kBf16 = io::DType::BF16;
BENCHMARK_CAPTURE(BM_Matmul, fp8_avx512, kFp8, Isa::Avx512, kF)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, fp8_avx2, kFp8, Isa::Avx2, kF)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, fp8_scalar, kFp8, Isa::Scalar, kF)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, bf16_avx512, kBf16, Isa::Avx512, kF)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, bf16_avx2, kBf16, Isa::Avx2, kF)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, fp8_avx512bf16_bf16n, kFp8, Isa::Avx512Bf16, kB)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, bf16_avx512bf16_bf16n, kBf16, Isa::Avx512Bf16, kB)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Matmul, fp8_avx512_bf16n, kFp8, Isa::Avx512, kB)->Apply(shapes);

// 64 routed experts' gates (FP8, 185 MB in all) and a vocabulary head (FP8 265 MB, BF16 530 MB).
BENCHMARK_CAPTURE(BM_MatvecCold, fp8_avx512, kFp8, Isa::Avx512, kF)->Args({1408, 2048, 64})->Args({129280, 2048, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, fp8_avx2, kFp8, Isa::Avx2, kF)->Args({1408, 2048, 64})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, bf16_avx512, kBf16, Isa::Avx512, kF)->Args({129280, 2048, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, bf16_avx2, kBf16, Isa::Avx2, kF)->Args({129280, 2048, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, fp8_avx512bf16_bf16n, kFp8, Isa::Avx512Bf16, kB)->Args({1408, 2048, 64})->Args({129280, 2048, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatvecCold, bf16_avx512bf16_bf16n, kBf16, Isa::Avx512Bf16, kB)->Args({129280, 2048, 1})->UseRealTime();
// A decode batch: T tokens against a head-sized matrix (read once per call).
BENCHMARK_CAPTURE(BM_Matmul, batch_bf16_avx512bf16_bf16n, kBf16, Isa::Avx512Bf16, kB)->Args({32768, 2048, 1})->Args({32768, 2048, 4})->Args({32768, 2048, 8})->UseRealTime();
BENCHMARK_CAPTURE(BM_Matmul, batch_bf16_avx512_fp32n, kBf16, Isa::Avx512, kF)->Args({32768, 2048, 1})->Args({32768, 2048, 4})->Args({32768, 2048, 8})->UseRealTime();
BENCHMARK_CAPTURE(BM_Matmul, batch_fp8_avx512bf16_bf16n, kFp8, Isa::Avx512Bf16, kB)->Args({32768, 2048, 1})->Args({32768, 2048, 4})->Args({32768, 2048, 8})->Args({1408, 2048, 4})->Args({1408, 2048, 8})->UseRealTime();

// The absorbed BF16 attention's block kernel on one thread (the bench preset's 16 heads,
// latent 512 + rope 64): every call takes the next block of 256 cached rows, of a cache that
// stays in L2 (512 rows: the kernel's compute, which is how the model runs it, since it
// copies each block into one buffer first) or of one larger than the last-level cache
// (131072 rows, read in place: the kernel waiting on memory). Args: cached rows in all.
void BM_LatentBlockCold(benchmark::State& state) {
  const int64_t H = 16, R = 512, Dp = 576, nb = kernels::kLatentBlockRows, rows = state.range(0);
  Rng rng(3);
  const size_t n = size_t((rows + 1) * Dp);
  void* mem = std::aligned_alloc(size_t(2) << 20, (n * 2 + (size_t(2) << 20) - 1) & ~((size_t(2) << 20) - 1));
  uint16_t* cache = static_cast<uint16_t*>(mem);
  std::vector<uint16_t> q(size_t(H * Dp));
  for (size_t i = 0; i < n; ++i) cache[i] = kernels::bf16_round(rng.symmetric(1.0f));
  for (uint16_t& v : q) v = kernels::bf16_round(rng.symmetric(1.0f));
  std::vector<const uint16_t*> x(size_t(nb + 1));
  std::vector<float> s(size_t(H * (nb + 1))), m(static_cast<size_t>(H)), l(static_cast<size_t>(H)), acc(size_t(H * R));
  std::vector<uint16_t> pb(size_t(H * (nb + 1)));
  int64_t next = 0;
  for (auto _ : state) {
    for (int64_t j = 0; j < nb; ++j) x[size_t(j)] = &cache[size_t((next + j) * Dp)];
    next = next + 2 * nb <= rows ? next + nb : 0;
    kernels::latent_block_bf16(q.data(), H, Dp, R, x.data(), nb, 0.1f, s.data(), pb.data(), m.data(), l.data(),
                               acc.data());
    benchmark::DoNotOptimize(acc.data());
  }
  std::free(mem);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(H * nb * (Dp + R)) * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LatentBlockCold)->Arg(131072)->Arg(512)->UseRealTime();

// The training GEMMs of the default-model config (batch 16 x 256 = 4096 tokens): Fprop
// y = x W^T, Dgrad dx = dy W, Wgrad dW = dy^T x of a 512 x 256 Linear, and one routed
// expert's Fprop (about 1024 tokens, 128 x 256), in fp32 and with BF16 inputs, on the whole
// pool. Args: M, N, K, kind (0 Fprop, 1 Dgrad, 2 Wgrad).
void BM_TrainGemm(benchmark::State& state, bool bf16) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2), kind = state.range(3);
  const bool ta = kind == 2, tb = kind == 0;
  Rng rng(4);
  std::vector<float> A(size_t(M * K)), B(size_t(K * N)), C(size_t(M * N));
  for (float& v : A) v = rng.symmetric(1.0f);
  for (float& v : B) v = rng.symmetric(1.0f);
  kernels::Context ctx(pool());
  for (auto _ : state) {
    if (bf16) {
      kernels::gemm_bf16(ctx, ta, tb, M, N, K, A.data(), B.data(), C.data(), kind != 0);
    } else {
      kernels::gemm<float>(ctx, ta, tb, M, N, K, A.data(), B.data(), C.data(), kind != 0);
    }
    benchmark::DoNotOptimize(C.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(M * N * K) * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}
void train_shapes(benchmark::internal::Benchmark* b) {
  b->Args({4096, 512, 256, 0})->Args({4096, 256, 512, 0})->Args({4096, 512, 256, 1})->Args({4096, 256, 512, 1})->Args({512, 256, 4096, 2})->Args({1024, 128, 256, 0});
  b->UseRealTime();
}
BENCHMARK_CAPTURE(BM_TrainGemm, fp32, false)->Apply(train_shapes);
BENCHMARK_CAPTURE(BM_TrainGemm, bf16, true)->Apply(train_shapes);

}  // namespace
}  // namespace dsv3

BENCHMARK_MAIN();
