// The BF16 products (`--numerics bf16`) under every ISA against their scalar twin, bit for
// bit: native vdpbf16ps, the emulated AVX-512 and AVX2 tiers and the portable path all
// compute bf16.h's definition. Plus the definition's own pieces (rounding, the e4m3 table),
// the invariances decode and batching rely on, and the distance from the fp32 product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/numeric.h"
#include "isa_util.h"
#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "matrix_util.h"
#include "test_util.h"

namespace dsv3 {
namespace {

using kernels::Numerics;

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Bf16, RoundingIsNearestEvenWithSubnormalsFlushed) {
  EXPECT_EQ(kernels::bf16_round(1.0f), 0x3F80);
  EXPECT_EQ(kernels::bf16_round(bits_float(0x3F808000u)), 0x3F80);  // tie to even (down)
  EXPECT_EQ(kernels::bf16_round(bits_float(0x3F818000u)), 0x3F82);  // tie to even (up)
  EXPECT_EQ(kernels::bf16_round(bits_float(0x3F808001u)), 0x3F81);
  EXPECT_EQ(kernels::bf16_round(-2.5f), 0xC020);
  EXPECT_EQ(kernels::bf16_round(1e-39f), 0x0000);   // subnormal -> +0
  EXPECT_EQ(kernels::bf16_round(-1e-39f), 0x8000);  // -> -0
  EXPECT_EQ(kernels::bf16_round(bits_float(0x7F7FFFFFu)), 0x7F80);  // rounds up to inf
  EXPECT_TRUE(std::isnan(kernels::bf16_value(kernels::bf16_round(std::nanf("")))));
}

TEST(Bf16, E4m3TableIsTheExactValue) {
  for (int b = 0; b < 128; ++b) {
    if (b == 0x7F) continue;  // NaN
    const float v = e4m3_to_f32(uint8_t(b));
    EXPECT_EQ(kernels::bf16_value(kernels::e4m3_magnitude_bf16(b)), v) << b;
    EXPECT_EQ(kernels::bf16_round(v), kernels::e4m3_magnitude_bf16(b)) << b;  // exact in BF16
  }
}

TEST(Bf16, Fp8OrderIsAPermutationOfEachBlock) {
  std::vector<int> seen(64, 0);
  for (int p = 0; p < 64; ++p) ++seen[size_t(kernels::fp8_order_element(p))];
  for (int e = 0; e < 64; ++e) EXPECT_EQ(seen[size_t(e)], 1) << e;
  EXPECT_EQ(kernels::fp8_order_element(8), 16);
  EXPECT_EQ(kernels::fp8_order_element(32), 8);
}

TEST(Bf16, DotRefSumsLanesInTheDefinedOrder) {
  // One chunk: lane 0 gets a*b of elements 1 then 0. 1 + 2^-24 rounds to 1, so the order shows.
  std::vector<uint16_t> a(32, 0), b(32, 0);
  a[0] = kernels::bf16_round(1.0f), b[0] = kernels::bf16_round(1.0f);
  a[1] = kernels::bf16_round(std::ldexp(1.0f, -24)), b[1] = kernels::bf16_round(1.0f);
  a[2] = kernels::bf16_round(std::ldexp(1.0f, -24)), b[2] = kernels::bf16_round(1.0f);  // lane 1
  // lane 0: (0 + 2^-24) + 1 = 1 (rounded); lane 1: 2^-24; tree: lane0 + lane1 at the last step
  EXPECT_EQ(kernels::bf16_dot_ref(a.data(), b.data(), 32), 1.0f);
}

struct Bf16Case {
  MatrixCase m;
  int64_t T;
};

void PrintTo(const Bf16Case& c, std::ostream* os) {
  PrintTo(c.m, os);
  *os << " T=" << c.T;
}

class MatmulBf16Test : public ::testing::TestWithParam<std::tuple<kernels::Isa, Bf16Case>> {};

// Some BF16 subnormals in a BF16 matrix: the products read them as zero on every tier.
void add_bf16_subnormals(TestMatrix& m) {
  if (m.w.dtype != io::DType::BF16) return;
  uint16_t* p = reinterpret_cast<uint16_t*>(m.bytes.data());
  const size_t n = m.bytes.size() / 2;
  for (size_t i = 3; i < n; i += 37) p[i] = uint16_t(0x0001 + (i % 0x7F) + ((i & 1) << 15));
}

TEST_P(MatmulBf16Test, FastEqualsTwinBitForBit) {
  const auto& [isa, c] = GetParam();
  testutil::IsaScope scope(isa);
  ASSERT_TRUE(scope.ok());
  TestMatrix m = make_matrix(c.m, 11);
  add_bf16_subnormals(m);
  const kernels::WeightMatrix& w = m.w;
  std::vector<float> x = random_vector(c.T * w.cols, 5);
  x[0] = 1e-39f;  // a subnormal activation
  if (x.size() > 3) x[3] = 3e4f;
  std::vector<float> y(size_t(c.T * w.rows), -1.0f), ref(y.size(), -2.0f);
  std::vector<float> scratch(kernels::matmul_scratch(w));
  // Two row ranges, as two threads would split them.
  const int64_t mid = w.rows / 3;
  kernels::matmul_rows(w, 0, mid, x.data(), w.cols, c.T, y.data(), w.rows, scratch.data(), Numerics::Bf16);
  kernels::matmul_rows(w, mid, w.rows, x.data(), w.cols, c.T, y.data() + mid, w.rows, scratch.data(),
                       Numerics::Bf16);
  kernels::matmul_rows_bf16_ref(w, 0, w.rows, x.data(), w.cols, c.T, ref.data(), w.rows);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], ref[i]) << "element " << i;

  // Each token alone gives the same bits as in the batch (decode == prefill).
  std::vector<float> one(size_t(w.rows));
  for (int64_t t = 0; t < c.T; t += 7) {
    kernels::matmul_rows(w, 0, w.rows, x.data() + t * w.cols, w.cols, 1, one.data(), w.rows, scratch.data(),
                         Numerics::Bf16);
    for (int64_t r = 0; r < w.rows; ++r) ASSERT_EQ(one[size_t(r)], y[size_t(t * w.rows + r)]) << t << "," << r;
  }

  // Close to the fp32 product: each input rounded once (relative 2^-9).
  std::vector<float> exact(y.size());
  kernels::matmul_rows_ref(w, 0, w.rows, x.data(), w.cols, c.T, exact.data(), w.rows);
  for (size_t i = 0; i < y.size(); ++i) {
    double mag = 0;  // sum |x||w| bounds the rounding error
    const int64_t t = int64_t(i) / w.rows, r = int64_t(i) % w.rows;
    for (int64_t k = 0; k < w.cols; ++k) mag += std::fabs(double(x[size_t(t * w.cols + k)]) * w.at(r, k));
    ASSERT_NEAR(y[i], exact[i], 2 * std::ldexp(mag, -8) + 1e-30) << i;
  }
}

std::vector<Bf16Case> bf16_cases() {
  std::vector<Bf16Case> out;
  const MatrixCase shapes[] = {
      {"bf16", io::DType::BF16, 9, 300},      {"bf16", io::DType::BF16, 13, 64},
      {"bf16", io::DType::BF16, 5, 7},        {"fp8", io::DType::F8_E4M3, 11, 300},
      {"fp8", io::DType::F8_E4M3, 260, 200},  {"fp8_small_blocks", io::DType::F8_E4M3, 37, 100, 16, 48},
      {"f32", io::DType::F32, 7, 129},        {"f16", io::DType::F16, 6, 65},
  };
  for (const MatrixCase& m : shapes)
    for (int64_t T : {1, 3, 5, 17, 70}) out.push_back({m, T});
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, MatmulBf16Test,
                         ::testing::Combine(::testing::ValuesIn(testutil::supported_isas()),
                                            ::testing::ValuesIn(bf16_cases())),
                         [](const auto& info) {
                           const Bf16Case& c = std::get<1>(info.param);
                           return testutil::isa_label(std::get<0>(info.param)) + "_" + c.m.label + "_" +
                                  std::to_string(c.m.rows) + "x" + std::to_string(c.m.cols) + "_T" +
                                  std::to_string(c.T);
                         });

// matmul() over a pool: the same bits whatever the thread count, in bf16 numerics too.
TEST(MatmulBf16, ThreadCountDoesNotChangeResults) {
  TestMatrix m = make_matrix({"fp8", io::DType::F8_E4M3, 300, 256}, 3);
  std::vector<float> x = random_vector(20 * 256, 9);
  std::vector<float> a(20 * 300), b(a.size());
  ThreadPool one(1), two(2);
  kernels::Context c1(one), c2(two);
  c1.set_numerics(Numerics::Bf16);
  c2.set_numerics(Numerics::Bf16);
  kernels::matmul(c1, m.w, x.data(), 20, a.data());
  kernels::matmul(c2, m.w, x.data(), 20, b.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

// The transposed product rounds its inputs and sums exact products in order.
TEST(MatmulBf16, TransposedRowsRoundTheirInputs) {
  TestMatrix m = make_matrix({"fp8", io::DType::F8_E4M3, 128, 96}, 4);
  const int64_t T = 3, n = 40;
  std::vector<float> x = random_vector(T * n, 2), xr(x.size());
  for (size_t i = 0; i < x.size(); ++i) xr[i] = kernels::bf16_value(kernels::bf16_round(x[i]));
  std::vector<float> y(size_t(T * 96)), ref(y.size()), scratch(kernels::matmul_scratch(m.w));
  kernels::matmul_t_rows(m.w, 8, 8 + n, x.data(), n, T, y.data(), 96, scratch.data(), Numerics::Bf16);
  kernels::matmul_t_rows(m.w, 8, 8 + n, xr.data(), n, T, ref.data(), 96, scratch.data(), Numerics::Fp32);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], ref[i]) << i;
}

TEST(Numerics, ParsesItsNames) {
  EXPECT_EQ(kernels::parse_numerics("bf16"), Numerics::Bf16);
  EXPECT_EQ(kernels::parse_numerics("fp32"), Numerics::Fp32);
  EXPECT_THROW(kernels::parse_numerics("fp16"), Error);
}

}  // namespace
}  // namespace dsv3
