// The low-precision training GEMMs. kernels::gemm_bf16: on every ISA the bits of the fp32
// GEMM on BF16-rounded copies of its inputs; on the AVX512_BF16 tier that is vdpbf16ps over
// packed pairs, checked here against the other tiers' FMAs, for every layout, partial tiles,
// odd K, several K blocks, and any thread count. kernels::gemm_fp8: the bits of its scalar
// twin (blockwise sums of e4m3 products, scaled into C block by block) on every ISA, and the
// fake-quantized fp32 product within summation error.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/rng.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "kernels/quant.h"
#include "isa_util.h"
#include "test_util.h"
#include "threading/pool.h"

namespace dsv3 {
namespace {

using testutil::bits;

// Values over many binades, exact zeros, and ties and near-ties of the BF16 rounding.
std::vector<float> operand(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    const uint64_t r = rng.next();
    x = float(int64_t(r % 2000001) - 1000000) * std::ldexp(1.0f, int((r >> 32) % 24) - 32);
    if ((r >> 60) == 0) x = 0.0f;
    if ((r >> 60) == 1) {  // half a BF16 step above a BF16 value: a tie
      const float b = kernels::bf16_value(kernels::bf16_round(x));
      x = b + std::ldexp(b, -8);
    }
  }
  return v;
}

std::vector<float> rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = kernels::bf16_value(kernels::bf16_round(v[i]));
  return r;
}

using Shape = std::tuple<int64_t, int64_t, int64_t>;
const Shape kShapes[] = {{1, 1, 1},   {12, 32, 2},   {13, 33, 3},    {7, 37, 300}, {50, 3, 17},
                         {25, 70, 513}, {64, 130, 600}, {100, 256, 128}, {3, 64, 1025}};

class GemmBf16 : public ::testing::TestWithParam<kernels::Isa> {};

TEST_P(GemmBf16, EqualsTheFp32GemmOnRoundedInputsBitForBit) {
  const testutil::IsaScope isa(GetParam());
  ASSERT_TRUE(isa.ok());
  kernels::Context ctx(testutil::pool());
  for (auto [M, N, K] : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool accumulate : {false, true}) {
          SCOPED_TRACE(testing::Message() << M << "x" << N << "x" << K << " ta " << ta << " tb " << tb << " acc "
                                          << accumulate);
          const std::vector<float> A = operand(M * K, uint64_t(M * 7 + K)), B = operand(K * N, uint64_t(N * 13 + K));
          std::vector<float> C = operand(M * N, 99), want = C;
          kernels::gemm_bf16(ctx, ta, tb, M, N, K, A.data(), B.data(), C.data(), accumulate);
          kernels::gemm<float>(ctx, ta, tb, M, N, K, rounded(A).data(), rounded(B).data(), want.data(), accumulate);
          for (size_t i = 0; i < C.size(); ++i) ASSERT_EQ(bits(C[i]), bits(want[i])) << "element " << i;
        }
}

// One thread or the whole pool: the same bits (each output's sums keep their order).
TEST_P(GemmBf16, ThreadCountDoesNotChangeTheBits) {
  const testutil::IsaScope isa(GetParam());
  ASSERT_TRUE(isa.ok());
  kernels::Context ctx(testutil::pool());
  ThreadPool one(1);
  kernels::Context serial(one);
  for (auto [M, N, K] : {Shape{200, 96, 700}, Shape{30, 512, 256}}) {
    const std::vector<float> A = operand(M * K, 5), B = operand(K * N, 6);
    std::vector<float> C(size_t(M * N), 0.5f), D = C;
    kernels::gemm_bf16(ctx, true, false, M, N, K, A.data(), B.data(), C.data(), true);
    kernels::gemm_bf16(serial, true, false, M, N, K, A.data(), B.data(), D.data(), true);
    for (size_t i = 0; i < C.size(); ++i) ASSERT_EQ(bits(C[i]), bits(D[i])) << i;
  }
}

// Across tiers: the native BF16 tier's results equal the FMA tiers' (AVX-512 and AVX2),
// so a checkpoint trained on one CPU continues bit for bit on another.
TEST(GemmBf16Tiers, NativeAndEmulatedTiersAgree) {
  std::vector<kernels::Isa> simd;
  for (kernels::Isa i : testutil::supported_isas())
    if (i != kernels::Isa::Scalar) simd.push_back(i);
  if (simd.size() < 2) GTEST_SKIP() << "one SIMD tier on this CPU";
  kernels::Context ctx(testutil::pool());
  const int64_t M = 37, N = 70, K = 777;
  const std::vector<float> A = operand(M * K, 11), B = operand(N * K, 12);
  std::vector<std::vector<float>> out;
  for (kernels::Isa i : simd) {
    const testutil::IsaScope isa(i);
    out.emplace_back(size_t(M * N), 0.0f);
    kernels::gemm_bf16(ctx, false, true, M, N, K, A.data(), B.data(), out.back().data(), false);
  }
  for (size_t t = 1; t < out.size(); ++t)
    for (size_t i = 0; i < out[0].size(); ++i)
      ASSERT_EQ(bits(out[t][i]), bits(out[0][i])) << kernels::isa_name(simd[t]) << " element " << i;
}

// And the values are what the products say: within fp32 summation error of the exact
// products of the rounded inputs.
TEST(GemmBf16Tiers, CloseToExactProductsOfRoundedInputs) {
  kernels::Context ctx(testutil::pool());
  const int64_t M = 20, N = 40, K = 300;
  const std::vector<float> A = operand(M * K, 21), B = operand(K * N, 22);
  const std::vector<float> ar = rounded(A), br = rounded(B);
  std::vector<float> C(size_t(M * N));
  kernels::gemm_bf16(ctx, false, false, M, N, K, A.data(), B.data(), C.data(), false);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double want = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = double(ar[size_t(i * K + k)]) * br[size_t(k * N + j)];
        want += t;
        mag += std::fabs(t);
      }
      ASSERT_NEAR(C[size_t(i * N + j)], want, 1e-6 * double(K) * mag + 1e-30) << i << "," << j;
    }
}

// ---- FP8 ----------------------------------------------------------------------------------

// x quantized with tile_r x tile_c tiles: codes, scales, and the fake-quantized values.
struct Quantized {
  std::vector<float> codes, scales, fake;
  std::vector<uint8_t> bytes;  // the codes' one-byte encodings
  kernels::Fp8Matrix view(int64_t tr, int64_t tc) const { return {codes.data(), scales.data(), tr, tc}; }
  kernels::Fp8Matrix byte_view(int64_t tr, int64_t tc) const {
    return {nullptr, scales.data(), tr, tc, bytes.data()};
  }
};
Quantized quantized(const std::vector<float>& x, int64_t rows, int64_t cols, int64_t tr, int64_t tc) {
  Quantized q{std::vector<float>(x.size()), std::vector<float>(size_t(((rows + tr - 1) / tr) * ((cols + tc - 1) / tc))),
              std::vector<float>(x.size()), {}};
  kernels::fp8_quant_ref(x.data(), rows, cols, tr, tc, q.codes.data(), q.scales.data());
  kernels::fp8_fake_quant_ref(x.data(), rows, cols, tr, tc, q.fake.data());
  for (float c : q.codes) q.bytes.push_back(kernels::e4m3_byte(c));
  return q;
}

class GemmFp8 : public ::testing::TestWithParam<kernels::Isa> {};

// Every layout the trainer uses and the others, activation (1 x 128 / 128 x 1) and weight
// (128 x 128) tiles, K below, at and past one block, odd: the twin's bits, and the fake-quant
// fp32 product within summation error.
TEST_P(GemmFp8, EqualsItsTwinBitForBitAndTheFakeQuantProduct) {
  const testutil::IsaScope isa(GetParam());
  ASSERT_TRUE(isa.ok());
  kernels::Context ctx(testutil::pool());
  for (auto [M, N, K] : {Shape{1, 1, 1}, Shape{13, 33, 127}, Shape{40, 70, 128}, Shape{25, 150, 300}, Shape{150, 40, 257}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t other : {1, 128}) {
          SCOPED_TRACE(testing::Message() << M << "x" << N << "x" << K << " ta " << ta << " tb " << tb << " tile "
                                          << other);
          std::vector<float> a = operand(M * K, uint64_t(M + K)), b = operand(K * N, uint64_t(N + 3 * K));
          // A's stored [ta ? K : M, ta ? M : K], tiles 128 along k; B's likewise.
          const int64_t ar = ta ? K : M, ac = ta ? M : K, atr = ta ? 128 : other, atc = ta ? other : 128;
          const int64_t br = tb ? N : K, bc = tb ? K : N, btr = tb ? other : 128, btc = tb ? 128 : other;
          const Quantized qa = quantized(a, ar, ac, atr, atc), qb = quantized(b, br, bc, btr, btc);
          for (bool accumulate : {false, true}) {
            std::vector<float> C = operand(M * N, 5), want = C, fake = C;
            kernels::gemm_fp8(ctx, ta, tb, M, N, K, qa.view(atr, atc), qb.view(btr, btc), C.data(), accumulate);
            kernels::gemm_fp8_ref(ta, tb, M, N, K, qa.view(atr, atc), qb.view(btr, btc), want.data(), accumulate);
            for (size_t i = 0; i < C.size(); ++i) ASSERT_EQ(bits(C[i]), bits(want[i])) << "element " << i;
            // Either operand as bytes (a kept activation's form): the same bits, fast and twin.
            for (int which : {0, 1, 2}) {
              std::vector<float> Cb = operand(M * N, 5), Cr = Cb;
              const kernels::Fp8Matrix va = which != 1 ? qa.byte_view(atr, atc) : qa.view(atr, atc);
              const kernels::Fp8Matrix vb = which != 0 ? qb.byte_view(btr, btc) : qb.view(btr, btc);
              kernels::gemm_fp8(ctx, ta, tb, M, N, K, va, vb, Cb.data(), accumulate);
              kernels::gemm_fp8_ref(ta, tb, M, N, K, va, vb, Cr.data(), accumulate);
              for (size_t i = 0; i < C.size(); ++i) {
                ASSERT_EQ(bits(Cb[i]), bits(C[i])) << "bytes " << which << ", element " << i;
                ASSERT_EQ(bits(Cr[i]), bits(C[i])) << "bytes " << which << ", twin, element " << i;
              }
            }
            kernels::gemm<float>(ctx, ta, tb, M, N, K, qa.fake.data(), qb.fake.data(), fake.data(), accumulate);
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < N; ++j) {
                double mag = accumulate ? std::fabs(double(want[size_t(i * N + j)])) : 0.0;
                for (int64_t k = 0; k < K; ++k)
                  mag += std::fabs(double(ta ? qa.fake[size_t(k * M + i)] : qa.fake[size_t(i * K + k)]) *
                                   (tb ? qb.fake[size_t(j * K + k)] : qb.fake[size_t(k * N + j)]));
                ASSERT_NEAR(C[size_t(i * N + j)], fake[size_t(i * N + j)], 4e-7 * double(K + 8) * mag + 1e-30)
                    << i << "," << j;
              }
          }
        }
}

TEST(GemmFp8Tiles, RejectsOperandsNotTiledBy128AlongKOrWithoutOneFormOfCodes) {
  kernels::Context ctx(testutil::pool());
  std::vector<float> x(64, 1.0f), s(64, 1.0f), c(64);
  const kernels::Fp8Matrix ok{x.data(), s.data(), 1, 128}, bad{x.data(), s.data(), 1, 64};
  EXPECT_THROW(kernels::gemm_fp8(ctx, false, true, 8, 8, 8, bad, ok, c.data(), false), Error);
  EXPECT_THROW(kernels::gemm_fp8(ctx, false, false, 8, 8, 8, ok, ok, c.data(), false), Error);  // B [K,N]: 128 x ..
  std::vector<uint8_t> b(64);
  const kernels::Fp8Matrix both{x.data(), s.data(), 1, 128, b.data()}, neither{nullptr, s.data(), 1, 128};
  EXPECT_THROW(kernels::gemm_fp8(ctx, false, true, 8, 8, 8, both, ok, c.data(), false), Error);
  EXPECT_THROW(kernels::gemm_fp8(ctx, false, true, 8, 8, 8, ok, neither, c.data(), false), Error);
}

INSTANTIATE_TEST_SUITE_P(Isas, GemmFp8, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Isas, GemmBf16, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });

}  // namespace
}  // namespace dsv3
