#include "kernels/gemm.h"

#include <algorithm>
#include <functional>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "kernels/isa.h"
#include "kernels/quant.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels {
namespace {

constexpr int64_t kMr = kGemmMr;
constexpr int64_t kKc = kGemmKc;

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

// An operand of the native path: fp32 values, or e4m3 codes as bytes (Fp8Matrix::bytes).
struct PackSource {
  const float* values;
  const uint8_t* bytes = nullptr;
};

// The native BF16 path: both operands packed (rounded) into BF16 pair dwords, A as
// [nI][P][kGemmBf16Mr] and B as [nJ][P][32]; the tiles add to C every `block` pairs (kKc /
// 2 must be a multiple) (times the packed scales sa [nI][blocks][kGemmBf16Mr] and sb [nJ][blocks][32]
// when given), split over the threads by whichever tile dimension gives each work.
void gemm_bf16_native(Context& ctx, const SimdKernels& simd, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      PackSource A, PackSource B, float* C, bool accumulate, int64_t block, const float* sa,
                      const float* sb) {
  constexpr int64_t kMr2 = kGemmBf16Mr, kNr = 32;
  ThreadPool& pool = ctx.pool();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int64_t P = (K + 1) / 2, nI = (M + kMr2 - 1) / kMr2, nJ = (N + kNr - 1) / kNr, nb = (P + block - 1) / block;
  uint32_t* const ap = ctx.pack_words(0, size_t(nI * P * kMr2));
  uint32_t* const bp = ctx.pack_words(1, size_t(nJ * P * kNr));
  // op(A) element (i, k): A[i * K + k] or A[k * M + i]; op(B) element (k, j), packed by j:
  // B[k * N + j] or B[j * K + k].
  const int64_t a_idx = ta ? 1 : K, a_k = ta ? M : 1, b_idx = tb ? K : 1, b_k = tb ? 1 : N;
  // An operand whose elements of one k lie together (op(A) transposed, op(B) as stored) is
  // packed in blocks of kPackPairs pairs across all its panels, so that a task reads whole
  // source rows once and they stay in L2 while every panel takes its part; panel by panel,
  // each panel walked the whole matrix one narrow band at a time and missed the cache on
  // every row. Operands with k contiguous go panel by panel (16 rows' k in order).
  constexpr int64_t kPackPairs = 32;
  const int64_t npb = (P + kPackPairs - 1) / kPackPairs;
  const int64_t a_tasks = a_idx == 1 ? npb * nI : nI, b_tasks = b_idx == 1 ? npb * nJ : nJ;
  const auto pack = [&](PackSource src, int64_t s_idx, int64_t s_k, int64_t rows, int64_t width, int64_t panels,
                        uint32_t* dst, int64_t task) {
    int64_t panel = task, p0 = 0, pn = P;
    if (s_idx == 1) {
      panel = task % panels;
      p0 = (task / panels) * kPackPairs;
      pn = std::min(kPackPairs, P - p0);
    }
    const int64_t at = panel * width * s_idx + 2 * p0 * s_k, k = std::min(2 * pn, K - 2 * p0);
    const int n = int(std::min(width, rows - panel * width));
    uint32_t* const to = dst + (panel * P + p0) * width;
    if (src.bytes) return simd.gemm_bf16_pack_e4m3(src.bytes + at, s_idx, s_k, k, n, int(width), to);
    simd.gemm_bf16_pack(src.values + at, s_idx, s_k, k, n, int(width), to);
  };
  for_range(pool, a_tasks + b_tasks, flops, [&](int, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (t < a_tasks) {
        pack(A, a_idx, a_k, M, kMr2, nI, ap, t);
      } else {
        pack(B, b_idx, b_k, N, kNr, nJ, bp, t - a_tasks);
      }
    }
  });
  const bool by_cols = nJ >= 2 * int64_t(pool.size()) || nJ >= nI;
  for_range(pool, by_cols ? nJ : nI, flops, [&](int, int64_t p0, int64_t p1) {
    const int64_t j0 = by_cols ? p0 : 0, j1 = by_cols ? p1 : nJ;
    const int64_t i0 = by_cols ? 0 : p0, i1 = by_cols ? nI : p1;
    // K in chunks of kKc (a whole number of blocks), so that a B panel's chunk stays in L1
    // while the rows of A stream past it.
    for (int64_t q0 = 0; q0 < P; q0 += kKc / 2) {
      const int64_t pc = std::min(kKc / 2, P - q0), qb = q0 / block;
      for (int64_t bj = j0; bj < j1; ++bj)
        for (int64_t bi = i0; bi < i1; ++bi)
          simd.gemm_bf16_tile(pc, block, ap + (bi * P + q0) * kMr2, bp + (bj * P + q0) * kNr,
                              sa ? sa + (bi * nb + qb) * kMr2 : nullptr, sb ? sb + (bj * nb + qb) * kNr : nullptr,
                              C + bi * kMr2 * N + bj * kNr, N, int(std::min(kMr2, M - bi * kMr2)),
                              int(std::min(kNr, N - bj * kNr)), accumulate || q0 > 0);
    }
  });
}

// The scale of op(A)'s (i, block kb) and op(B)'s (kb, j) (gemm.h: Fp8Matrix).
struct Fp8Scales {
  const Fp8Matrix& a;
  const Fp8Matrix& b;
  bool ta, tb;
  int64_t M, N, K;
  float of_a(int64_t i, int64_t kb) const {
    return ta ? a.scales[kb * ((M + a.tile_c - 1) / a.tile_c) + i / a.tile_c]
              : a.scales[(i / a.tile_r) * ((K + a.tile_c - 1) / a.tile_c) + kb];
  }
  float of_b(int64_t kb, int64_t j) const {
    return tb ? b.scales[(j / b.tile_r) * ((K + b.tile_c - 1) / b.tile_c) + kb]
              : b.scales[kb * ((N + b.tile_c - 1) / b.tile_c) + j / b.tile_c];
  }
};

// An operand's codes as fp32 values: as given, or its bytes widened into `wide` (n elements).
const float* codes_of(const Fp8Matrix& m, int64_t n, std::vector<float>& wide) {
  if (!m.bytes) return m.codes;
  wide.resize(size_t(n));
  fp8_dequant_ref(m.bytes, nullptr, n, 1, 1, 1, wide.data());
  return wide.data();
}

Fp8Scales check_fp8(const Fp8Matrix& a, const Fp8Matrix& b, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  if ((ta ? a.tile_r : a.tile_c) != kFp8Block || (tb ? b.tile_c : b.tile_r) != kFp8Block ||
      (ta ? a.tile_c : a.tile_r) < 1 || (tb ? b.tile_r : b.tile_c) < 1)
    fail("gemm_fp8: the operands' tiles must be ", kFp8Block, " along the reduction dimension (A ",
         a.tile_r, "x", a.tile_c, (ta ? " transposed" : ""), ", B ", b.tile_r, "x", b.tile_c,
         (tb ? " transposed" : ""), ")");
  if (!a.codes == !a.bytes || !b.codes == !b.bytes)
    fail("gemm_fp8: give each operand's codes either as fp32 values or as bytes, not both or neither");
  return Fp8Scales{a, b, ta, tb, M, N, K};
}

}  // namespace

void gemm_bf16(Context& ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B,
               float* C, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const SimdKernels* simd = reference_kernels() ? nullptr : active_simd();
  if (K > 0 && simd && simd->gemm_bf16_tile)
    return gemm_bf16_native(ctx, *simd, ta, tb, M, N, K, {A}, {B}, C, accumulate, kKc / 2, nullptr, nullptr);
  std::vector<float> a(size_t(M * K)), b(size_t(K * N));
  bf16_fake_round(ctx, A, M * K, a.data());
  bf16_fake_round(ctx, B, K * N, b.data());
  gemm<float>(ctx, ta, tb, M, N, K, a.data(), b.data(), C, accumulate);
}

void gemm_fp8(Context& ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const Fp8Matrix& A,
              const Fp8Matrix& B, float* C, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const Fp8Scales sc = check_fp8(A, B, ta, tb, M, N, K);
  if (K <= 0) {
    if (!accumulate) std::fill(C, C + M * N, 0.0f);
    return;
  }
  const int64_t nb = (K + kFp8Block - 1) / kFp8Block;
  const SimdKernels* simd = reference_kernels() ? nullptr : active_simd();
  if (simd && simd->gemm_bf16_tile) {
    constexpr int64_t kMr2 = kGemmBf16Mr, kNr = 32;
    const int64_t nI = (M + kMr2 - 1) / kMr2, nJ = (N + kNr - 1) / kNr;
    std::vector<float> sa(size_t(nI * nb * kMr2), 0.0f), sb(size_t(nJ * nb * kNr), 0.0f);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t kb = 0; kb < nb; ++kb) sa[size_t(((i / kMr2) * nb + kb) * kMr2 + i % kMr2)] = sc.of_a(i, kb);
    for (int64_t kb = 0; kb < nb; ++kb)
      for (int64_t j = 0; j < N; ++j) sb[size_t(((j / kNr) * nb + kb) * kNr + j % kNr)] = sc.of_b(kb, j);
    return gemm_bf16_native(ctx, *simd, ta, tb, M, N, K, {A.codes, A.bytes}, {B.codes, B.bytes}, C, accumulate,
                            kFp8Block / 2, sa.data(), sb.data());
  }
  std::vector<float> wide_a, wide_b;
  const float* const a_codes = codes_of(A, M * K, wide_a);
  const float* const b_codes = codes_of(B, K * N, wide_b);
  // The other tiers: each block's sums by the fp32 GEMM (one K block, k in order from zero:
  // the same bits), then scaled into C.
  std::vector<float> as(size_t(M * kFp8Block)), bs(size_t(kFp8Block * N)), t(size_t(M * N));
  for (int64_t kb = 0; kb < nb; ++kb) {
    const int64_t k0 = kb * kFp8Block, kc = std::min(kFp8Block, K - k0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < kc; ++k) as[size_t(i * kc + k)] = ta ? a_codes[(k0 + k) * M + i] : a_codes[i * K + k0 + k];
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t j = 0; j < N; ++j) bs[size_t(k * N + j)] = tb ? b_codes[j * K + k0 + k] : b_codes[(k0 + k) * N + j];
    gemm<float>(ctx, false, false, M, N, kc, as.data(), bs.data(), t.data(), false);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float& c = C[i * N + j];
        c = (accumulate || kb > 0 ? c : 0.0f) + t[size_t(i * N + j)] * sc.of_a(i, kb) * sc.of_b(kb, j);
      }
  }
}

void gemm_fp8_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const Fp8Matrix& A, const Fp8Matrix& B,
                  float* C, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const Fp8Scales sc = check_fp8(A, B, ta, tb, M, N, K);
  std::vector<float> wide_a, wide_b;
  const float* const a_codes = codes_of(A, M * K, wide_a);
  const float* const b_codes = codes_of(B, K * N, wide_b);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float c = accumulate ? C[i * N + j] : 0.0f;
      for (int64_t k0 = 0; k0 < K; k0 += kFp8Block) {
        float s = 0.0f;
        for (int64_t k = k0; k < std::min(K, k0 + kFp8Block); ++k)
          s += (ta ? a_codes[k * M + i] : a_codes[i * K + k]) * (tb ? b_codes[j * K + k] : b_codes[k * N + j]);
        c = c + s * sc.of_a(i, k0 / kFp8Block) * sc.of_b(k0 / kFp8Block, j);
      }
      C[i * N + j] = c;
    }
}

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
