// The BF16 products (`--numerics bf16`) under every ISA against their scalar twin, bit for
// bit: native vdpbf16ps, the emulated AVX-512 and AVX2 tiers and the portable path all
// compute bf16.h's definition. Plus the definition's own pieces (rounding, the e4m3 table),
// the invariances decode and batching rely on, and the distance from the fp32 product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/numeric.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "isa_util.h"
#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/simd/table.h"
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

std::string case_name(const ::testing::TestParamInfo<std::tuple<kernels::Isa, Bf16Case>>& info) {
  const Bf16Case& c = std::get<1>(info.param);
  return testutil::isa_label(std::get<0>(info.param)) + "_" + c.m.label + "_" + std::to_string(c.m.rows) + "x" +
         std::to_string(c.m.cols) + "_T" + std::to_string(c.T);
}

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
    for (int64_t T : {1, 3, 5, 8, 13, 16, 17, 70}) out.push_back({m, T});
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, MatmulBf16Test,
                         ::testing::Combine(::testing::ValuesIn(testutil::supported_isas()),
                                            ::testing::ValuesIn(bf16_cases())),
                         case_name);

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
  EXPECT_EQ(kernels::parse_numerics("fp8"), Numerics::Fp8);
  EXPECT_THROW(kernels::parse_numerics("fp16"), Error);
}


// --numerics fp8: e4m3 activation rounding as f32_to_e4m3 rounds (nearest, ties to even,
// saturating), across normals, subnormals, ties and the boundary between them.
TEST(Fp8Numerics, ActivationRoundingIsTheE4m3Codec) {
  std::vector<float> vals = {0.0f, -0.0f, 1.0f, 448.0f, 460.0f, 1e6f, 0.015625f, 0.0146484375f, 0.0009765625f,
                             0.00146484375f, 0.001953125f, 1e-9f, 1.0625f, 1.1875f, 17.0f, 240.0f, 3.3e-3f};
  Rng rng(3);
  for (int i = 0; i < 20000; ++i) vals.push_back(std::ldexp(rng.symmetric(1.0f), int(rng.next() % 24) - 14));
  for (int e = -9; e <= 8; ++e)  // every tie between neighbouring codes in [2^e, 2^(e+1))
    for (int m = 0; m < 8; ++m) vals.push_back(std::ldexp(1.0f + (2 * m + 1) / 16.0f, e));
  for (float v : vals) {
    const float want = e4m3_to_f32(f32_to_e4m3(v));
    EXPECT_EQ(kernels::bf16_value(kernels::e4m3_round_bf16(v)), want) << v;
    EXPECT_EQ(kernels::e4m3_round_bf16(v) & 0x8000, std::signbit(v) ? 0x8000 : 0) << v;
  }
  EXPECT_EQ(kernels::fp8_act_scale(448.0f, false), 1.0f);
  EXPECT_EQ(kernels::fp8_act_scale(0.0f, false), 1e-4f / 448.0f);  // all-zero block: no NaN
  EXPECT_EQ(kernels::fp8_act_scale(300.0f, true), 1.0f);            // ue8m0: up to a power of two
  EXPECT_EQ(kernels::fp8_act_scale(448.0f * 0.25f, true), 0.25f);
}

class Fp8NumericsTest : public ::testing::TestWithParam<std::tuple<kernels::Isa, Bf16Case>> {};

TEST_P(Fp8NumericsTest, FastEqualsTwinAndIsCloseToFp32) {
  const auto& [isa, c] = GetParam();
  testutil::IsaScope scope(isa);
  ASSERT_TRUE(scope.ok());
  for (bool ue8m0 : {false, true}) {
    TestMatrix m = make_matrix(c.m, 21);
    m.w.ue8m0 = ue8m0;
    const kernels::WeightMatrix& w = m.w;
    std::vector<float> x = random_vector(c.T * w.cols, 8);
    for (int64_t k = 0; k < std::min<int64_t>(w.cols, 128); ++k) x[size_t(k)] = 0.0f;  // an all-zero block
    std::vector<float> y(size_t(c.T * w.rows)), ref(y.size()), scratch(kernels::matmul_scratch(w));
    const int64_t mid = w.rows / 3;
    kernels::matmul_rows(w, 0, mid, x.data(), w.cols, c.T, y.data(), w.rows, scratch.data(), Numerics::Fp8);
    kernels::matmul_rows(w, mid, w.rows, x.data(), w.cols, c.T, y.data() + mid, w.rows, scratch.data(),
                         Numerics::Fp8);
    kernels::matmul_rows_fp8_ref(w, 0, w.rows, x.data(), w.cols, c.T, ref.data(), w.rows);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], ref[i]) << "element " << i << " ue8m0 " << ue8m0;
    std::vector<float> exact(y.size());
    kernels::matmul_rows_ref(w, 0, w.rows, x.data(), w.cols, c.T, exact.data(), w.rows);
    for (size_t i = 0; i < y.size(); ++i) {
      double mag = 0;  // each activation rounded to e4m3: relative 2^-4 (ue8m0: up to 2^-3)
      const int64_t t = int64_t(i) / w.rows, r = int64_t(i) % w.rows;
      for (int64_t k = 0; k < w.cols; ++k) mag += std::fabs(double(x[size_t(t * w.cols + k)]) * w.at(r, k));
      ASSERT_NEAR(y[i], exact[i], std::ldexp(mag, -3) + 1e-6) << i;
    }
  }
}

std::vector<Bf16Case> fp8_cases() {
  std::vector<Bf16Case> out;
  const MatrixCase shapes[] = {{"fp8", io::DType::F8_E4M3, 11, 300},
                               {"fp8", io::DType::F8_E4M3, 260, 256},
                               {"fp8_64", io::DType::F8_E4M3, 37, 100, 64, 64}};
  for (const MatrixCase& m : shapes)
    for (int64_t T : {1, 2, 3, 17, 70}) out.push_back({m, T});
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, Fp8NumericsTest,
                         ::testing::Combine(::testing::ValuesIn(testutil::supported_isas()),
                                            ::testing::ValuesIn(fp8_cases())),
                         case_name);

// Weights the official fp8 path does not quantize (BF16, or FP8 in blocks not a multiple of
// 64) run in bf16 numerics.
TEST(Fp8Numerics, OtherWeightsRunInBf16) {
  for (const MatrixCase& mc : {MatrixCase{"bf16", io::DType::BF16, 9, 300},
                               MatrixCase{"fp8_48", io::DType::F8_E4M3, 9, 100, 16, 48}}) {
    TestMatrix m = make_matrix(mc, 2);
    std::vector<float> x = random_vector(3 * m.w.cols, 1), a(size_t(3 * m.w.rows)), b(a.size());
    std::vector<float> scratch(kernels::matmul_scratch(m.w));
    kernels::matmul_rows(m.w, 0, m.w.rows, x.data(), m.w.cols, 3, a.data(), m.w.rows, scratch.data(), Numerics::Fp8);
    kernels::matmul_rows(m.w, 0, m.w.rows, x.data(), m.w.cols, 3, b.data(), m.w.rows, scratch.data(), Numerics::Bf16);
    EXPECT_EQ(a, b) << mc.label;
  }
}


// The kernels against the official recipe as scripts/reference.py computes it in PyTorch
// (tests/golden/fp8-gemm.safetensors, scripts/make_fp8_gemm_golden.py): the same products
// and scales, summed in another order, so equal up to fp32 summation error.
TEST(Fp8Numerics, MatchesThePyTorchRecipe) {
  const io::SafetensorsFile f =
      io::SafetensorsFile::open((std::filesystem::path(DSV3_SOURCE_DIR) / "tests/golden/fp8-gemm.safetensors").string());
  const io::TensorInfo* xi = f.find("x");
  const io::TensorInfo* wi = f.find("w");
  const io::TensorInfo* si = f.find("w_scale_inv");
  ASSERT_TRUE(xi && wi && si);
  const int64_t T = xi->shape[0], K = xi->shape[1], R = wi->shape[0];
  kernels::WeightMatrix w;
  w.name = "golden.w";
  w.dtype = io::DType::F8_E4M3;
  w.data = f.data(*wi);
  w.rows = R;
  w.cols = K;
  w.scale_cols = si->shape[1];
  std::vector<float> scale(size_t(si->numel())), x(size_t(xi->numel()));
  std::memcpy(scale.data(), f.data(*si), scale.size() * 4);
  std::memcpy(x.data(), f.data(*xi), x.size() * 4);
  w.scale = scale.data();
  for (const char* name : {"y", "y_ue8m0"}) {
    w.ue8m0 = std::string(name) == "y_ue8m0";
    std::vector<float> want(size_t(T * R)), got(want.size()), ref(want.size()), scratch(kernels::matmul_scratch(w));
    std::memcpy(want.data(), f.data(*f.find(name)), want.size() * 4);
    kernels::matmul_rows(w, 0, R, x.data(), K, T, got.data(), R, scratch.data(), Numerics::Fp8);
    kernels::matmul_rows_fp8_ref(w, 0, R, x.data(), K, T, ref.data(), R);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < R; ++r) {
        double mag = 0;  // bounds the fp32 summation error
        for (int64_t k = 0; k < K; ++k) mag += std::fabs(double(x[size_t(t * K + k)]) * w.at(r, k));
        const size_t i = size_t(t * R + r);
        ASSERT_EQ(got[i], ref[i]) << name;
        ASSERT_NEAR(got[i], want[i], 1e-5 * mag + 1e-30) << name << " t" << t << " r" << r;
      }
  }
}


// The self-check isa.cc runs before it offers the native tier: true for every tier this CPU
// runs (they all compute the twin's bits), false for products summed any other way.
TEST(Bf16, SelfCheckAcceptsTheTiersAndRejectsOtherSums) {
  const kernels::Isa before = kernels::active_isa();
  for (kernels::Isa isa : testutil::supported_isas()) {
    ASSERT_TRUE(kernels::set_isa(isa));
    if (const kernels::SimdKernels* k = kernels::active_simd()) {
      EXPECT_TRUE(kernels::bf16_products_match_twin(*k)) << kernels::isa_name(isa);
    }
  }
  kernels::set_isa(before);
  if (const kernels::SimdKernels* k = kernels::active_simd()) {
    kernels::SimdKernels other = *k;
    // The right products, summed in fp32 in natural order: not the defined order.
    other.rows_bf16 = [](const kernels::WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t xs, int64_t T,
                         float* y, int64_t ys, float*) {
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = r0; r < r1; ++r) {
          float s = 0;
          for (int64_t c = 0; c < w.cols; ++c)
            s += kernels::bf16_operand(kernels::bf16_round(x[t * xs + c])) *
                 (w.scale ? kernels::bf16_operand(kernels::bf16_round(w.raw_at(r, c))) * 1.0f
                          : kernels::bf16_operand(kernels::bf16_round(w.at(r, c))));
          y[t * ys + (r - r0)] = s;
        }
    };
    EXPECT_FALSE(kernels::bf16_products_match_twin(other));
  }
}


// Products sharing an input in one pool job give each product's own bits, in every numerics.
TEST(MatmulShared, EqualsSeparateProducts) {
  TestMatrix a = make_matrix({"fp8", io::DType::F8_E4M3, 150, 200}, 5), b = make_matrix({"bf16", io::DType::BF16, 37, 200}, 6);
  std::vector<float> x = random_vector(3 * 200, 4);
  for (Numerics n : {Numerics::Fp32, Numerics::Bf16, Numerics::Fp8}) {
    kernels::Context ctx(testutil::pool());
    ctx.set_numerics(n);
    std::vector<float> ya(3 * 150), yb(3 * 37), wa(ya.size()), wb(yb.size());
    kernels::matmul_shared_input(ctx, {{&a.w, ya.data()}, {&b.w, yb.data()}}, x.data(), 3);
    kernels::matmul(ctx, a.w, x.data(), 3, wa.data());
    kernels::matmul(ctx, b.w, x.data(), 3, wb.data());
    EXPECT_EQ(ya, wa) << kernels::numerics_name(n);
    EXPECT_EQ(yb, wb) << kernels::numerics_name(n);
  }
}

}  // namespace
}  // namespace dsv3
