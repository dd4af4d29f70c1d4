// Training's low-precision operands (kernels/quant.h): e4m3_nearest against a search over
// every e4m3 value, and the fake quantization and BF16 rounding of every ISA against their
// scalar twins, bit for bit, over all three tile shapes of the FP8 recipe; the one-byte e4m3
// form and its dequantization; and the optimizer's update against its twin.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "isa_util.h"
#include "kernels/adamw.h"
#include "kernels/bf16.h"
#include "kernels/quant.h"
#include "test_util.h"

namespace dsv3::kernels {
namespace {

// Every finite non-negative e4m3 value in increasing order (index = magnitude code).
std::vector<float> e4m3_values() {
  std::vector<float> v;
  for (int m = 0; m < 127; ++m) v.push_back(bf16_value(e4m3_magnitude_bf16(m)));
  return v;
}

// The nearest e4m3 value by search: ties go to the even code (even mantissa).
float nearest_by_search(float x) {
  static const std::vector<float> vals = e4m3_values();
  const float a = std::fabs(x);
  if (a >= 448.0f) return std::copysign(448.0f, x);
  int best = 0;
  for (int m = 1; m < 127; ++m) {
    const double d = std::fabs(double(vals[size_t(m)]) - a), db = std::fabs(double(vals[size_t(best)]) - a);
    if (d < db || (d == db && m % 2 == 0)) best = m;
  }
  return std::copysign(vals[size_t(best)], x);
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(E4m3Nearest, MatchesASearchOverEveryValue) {
  std::mt19937 rng(7);
  std::vector<float> xs = {0.0f, -0.0f, 448.0f, 449.0f, 464.0f, 1e30f, std::numeric_limits<float>::infinity(),
                           0.015625f, 0.0156249f, 1.0f / 512, 1.0f / 1024, 3.0f / 1024, 1e-30f, -1e-30f};
  // Every midpoint between neighbours (the ties) and a hair either side.
  const std::vector<float> vals = e4m3_values();
  for (size_t i = 0; i + 1 < vals.size(); ++i) {
    const float mid = 0.5f * (vals[i] + vals[i + 1]);
    xs.insert(xs.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1000.0f), -mid});
  }
  std::uniform_real_distribution<float> e(-14.0f, 9.5f), u(0.0f, 1.0f);
  for (int i = 0; i < 20000; ++i) xs.push_back((u(rng) < 0.5f ? -1.0f : 1.0f) * std::exp2(e(rng)));
  for (float x : xs) ASSERT_TRUE(same_bits(e4m3_nearest(x), nearest_by_search(x))) << x;
  EXPECT_TRUE(std::isnan(e4m3_nearest(std::numeric_limits<float>::quiet_NaN())));
}

std::vector<float> test_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937 rng{uint32_t(seed)};
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::uniform_real_distribution<float> e(-30.0f, 10.0f);
  std::vector<float> x(size_t(rows * cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = n(rng) * std::exp2(float(int(i / 97 % 7)) * 3.0f - 12.0f);
  for (size_t i = 0; i < x.size(); i += 13) x[i] = std::exp2(e(rng));  // outliers and tiny values
  // One all-zero 128-block of the first rows (scale 1), and exact ties for the rounding.
  if (rows > 0) for (int64_t c = 0; c < std::min<int64_t>(cols, 128); ++c) x[size_t(c)] = 0.0f;
  if (rows > 2) for (int64_t c = 0; c < cols; ++c) x[size_t(2 * cols + c)] = float(c % 9) * 0.5f + 0.25f;
  return x;
}

class QuantIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(QuantIsa, Fp8FakeQuantGivesTheTwinsBitsForEveryTileShape) {
  testutil::IsaScope scope(GetParam());
  ASSERT_TRUE(scope.ok());
  Context ctx(testutil::pool());
  struct Case { int64_t rows, cols, tr, tc; };
  for (const Case& c : {Case{5, 300, 1, 128}, Case{300, 7, 128, 1}, Case{260, 200, 128, 128}, Case{1, 17, 1, 128},
                        Case{129, 384, 1, 128}, Case{257, 130, 128, 1}, Case{0, 5, 1, 128}}) {
    const std::vector<float> x = test_matrix(c.rows, c.cols, uint64_t(c.rows * 1000 + c.cols));
    std::vector<float> want(x.size()), got(x.size()), inplace = x;
    fp8_fake_quant_ref(x.data(), c.rows, c.cols, c.tr, c.tc, want.data());
    fp8_fake_quant(ctx, x.data(), c.rows, c.cols, c.tr, c.tc, got.data());
    fp8_fake_quant(ctx, inplace.data(), c.rows, c.cols, c.tr, c.tc, inplace.data());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(same_bits(got[i], want[i])) << c.rows << "x" << c.cols << " tile " << c.tr << "x" << c.tc << " [" << i
                                               << "] " << x[i] << ": " << got[i] << " vs " << want[i];
      ASSERT_TRUE(same_bits(inplace[i], want[i])) << i;
    }
  }
}

// The codes-and-scales form: the twin's bits, and codes x their tile's scale is the fake
// quantization's value exactly.
TEST_P(QuantIsa, Fp8QuantGivesTheTwinsCodesAndScales) {
  testutil::IsaScope scope(GetParam());
  ASSERT_TRUE(scope.ok());
  Context ctx(testutil::pool());
  struct Case { int64_t rows, cols, tr, tc; };
  for (const Case& c : {Case{5, 300, 1, 128}, Case{300, 7, 128, 1}, Case{260, 200, 128, 128}, Case{129, 384, 1, 128}}) {
    const std::vector<float> x = test_matrix(c.rows, c.cols, uint64_t(c.rows * 31 + c.cols));
    const int64_t ncols = (c.cols + c.tc - 1) / c.tc;
    const size_t ns = size_t(((c.rows + c.tr - 1) / c.tr) * ncols);
    std::vector<float> codes(x.size()), scales(ns, -1.0f), want(x.size()), want_s(ns, -2.0f), fake(x.size());
    fp8_quant(ctx, x.data(), c.rows, c.cols, c.tr, c.tc, codes.data(), scales.data());
    fp8_quant_ref(x.data(), c.rows, c.cols, c.tr, c.tc, want.data(), want_s.data());
    fp8_fake_quant_ref(x.data(), c.rows, c.cols, c.tr, c.tc, fake.data());
    for (size_t i = 0; i < ns; ++i) ASSERT_TRUE(same_bits(scales[i], want_s[i])) << "scale " << i;
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t k = 0; k < c.cols; ++k) {
        const size_t i = size_t(r * c.cols + k);
        ASSERT_TRUE(same_bits(codes[i], want[i])) << c.rows << "x" << c.cols << " [" << i << "]";
        ASSERT_LE(std::fabs(codes[i]), 448.0f);
        ASSERT_TRUE(same_bits(codes[i] * scales[size_t((r / c.tr) * ncols + k / c.tc)], fake[i])) << i;
      }
  }
}

// The one-byte form the trainer keeps Linear inputs in: the twin's bytes on every ISA
// (NaN, signed zeros and subnormal codes included), every byte decoding to what it encodes,
// and bytes x scales giving the fake quantization's values bit for bit.
TEST_P(QuantIsa, Fp8BytesAndDequantGiveTheTwinsBits) {
  testutil::IsaScope scope(GetParam());
  ASSERT_TRUE(scope.ok());
  Context ctx(testutil::pool());
  for (int b = 0; b < 256; ++b) {
    const float v = e4m3_from_byte(uint8_t(b));
    ASSERT_EQ(e4m3_byte(v), b) << b;
    if ((b & 0x7F) != 0x7F) {
      ASSERT_EQ(std::fabs(v), e4m3_values()[size_t(b & 0x7F)]) << b;
    }
  }
  struct Case { int64_t rows, cols, tr, tc; };
  for (const Case& c : {Case{5, 300, 1, 128}, Case{300, 7, 128, 1}, Case{260, 200, 128, 128}, Case{129, 384, 1, 128},
                        Case{3, 37, 1, 128}}) {
    const std::vector<float> x = test_matrix(c.rows, c.cols, uint64_t(c.rows * 7 + c.cols));
    const size_t ns = size_t(fp8_scale_count(c.rows, c.cols, c.tr, c.tc));
    std::vector<float> codes(x.size()), scales(ns), fake(x.size());
    fp8_quant_ref(x.data(), c.rows, c.cols, c.tr, c.tc, codes.data(), scales.data());
    fp8_fake_quant_ref(x.data(), c.rows, c.cols, c.tr, c.tc, fake.data());
    codes[1] = -0.0f;
    codes[2] = std::numeric_limits<float>::quiet_NaN();
    codes[3] = -1.0f / 512;  // the smallest subnormal
    codes[4] = 7.0f / 512;   // the largest
    std::vector<uint8_t> bytes(x.size()), want_bytes(x.size());
    // Quantized straight to bytes: fp8_quant's codes and scales, encoded.
    std::vector<float> direct_scales(ns);
    fp8_quant_bytes(ctx, x.data(), c.rows, c.cols, c.tr, c.tc, bytes.data(), direct_scales.data());
    e4m3_to_bytes_ref(codes.data(), int64_t(x.size()), want_bytes.data());
    for (size_t i = 5; i < x.size(); ++i)
      ASSERT_EQ(bytes[i], want_bytes[i]) << c.rows << "x" << c.cols << " [" << i << "]";
    ASSERT_EQ(direct_scales, scales);
    e4m3_to_bytes(ctx, codes.data(), int64_t(x.size()), bytes.data());
    e4m3_to_bytes_ref(codes.data(), int64_t(x.size()), want_bytes.data());
    ASSERT_EQ(bytes, want_bytes) << c.rows << "x" << c.cols;
    std::vector<float> got(x.size()), want(x.size()), values(x.size());
    fp8_dequant(ctx, bytes.data(), scales.data(), c.rows, c.cols, c.tr, c.tc, got.data());
    fp8_dequant_ref(bytes.data(), scales.data(), c.rows, c.cols, c.tr, c.tc, want.data());
    fp8_dequant(ctx, bytes.data(), nullptr, c.rows, c.cols, c.tr, c.tc, values.data());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(same_bits(got[i], want[i])) << c.rows << "x" << c.cols << " [" << i << "]";
      ASSERT_TRUE(same_bits(values[i], codes[i])) << i;
      if (i > 4) {
        ASSERT_TRUE(same_bits(got[i], fake[i])) << i;
      }
    }
  }
}

TEST_P(QuantIsa, Bf16RoundGivesTheTwinsBits) {
  testutil::IsaScope scope(GetParam());
  ASSERT_TRUE(scope.ok());
  Context ctx(testutil::pool());
  std::vector<float> x = test_matrix(37, 1111, 3);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  x[6] = -std::numeric_limits<float>::infinity();
  x[7] = 1e-40f;  // subnormal: to zero
  x[8] = -1e-40f;
  x[9] = 1.0f + 1.0f / 256;  // a tie: to even
  std::vector<float> want(x.size()), got(x.size());
  bf16_fake_round_ref(x.data(), int64_t(x.size()), want.data());
  bf16_fake_round(ctx, x.data(), int64_t(x.size()), got.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(same_bits(got[i], want[i])) << i << ": " << x[i];
  EXPECT_EQ(want[9], 1.0f);
  EXPECT_TRUE(same_bits(want[8], -0.0f));
}

// The optimizer's update (kernels/adamw.h) gives the twin's bits for the weights and both
// moments, fp32 and BF16 moments, with tails, signed zeros, tiny and huge gradients.
TEST_P(QuantIsa, AdamWUpdateGivesTheTwinsBits) {
  testutil::IsaScope scope(GetParam());
  ASSERT_TRUE(scope.ok());
  const int64_t n = 1003;
  const std::vector<float> w0 = test_matrix(1, n, 21), g = test_matrix(1, n, 22), m0 = test_matrix(1, n, 23);
  std::vector<float> v0 = test_matrix(1, n, 24);
  for (float& x : v0) x = x * x;
  for (const bool bf16 : {false, true})
    for (const double decay : {1.0, 1.0 - 1e-3 * 0.1}) {
      const AdamWStep st{0.9, 0.95, 1.0 - std::pow(0.9, 7.0), 1.0 - std::pow(0.95, 7.0), 1e-3, 1e-8, decay, bf16};
      std::vector<float> w = w0, m = m0, v = v0, wr = w0, mr = m0, vr = v0;
      adamw_update(st, w.data(), g.data(), m.data(), v.data(), n);
      adamw_update_ref(st, wr.data(), g.data(), mr.data(), vr.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(same_bits(w[size_t(i)], wr[size_t(i)])) << "w[" << i << "] bf16 " << bf16;
        ASSERT_TRUE(same_bits(m[size_t(i)], mr[size_t(i)])) << "m[" << i << "] bf16 " << bf16;
        ASSERT_TRUE(same_bits(v[size_t(i)], vr[size_t(i)])) << "v[" << i << "] bf16 " << bf16;
      }
      if (bf16) {
        EXPECT_EQ(m[5], bf16_value(bf16_round(m[5])));
      }
      EXPECT_NE(w, w0);
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantIsa, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(Fp8FakeQuant, ValuesAreScaledE4m3WithinHalfAStep) {
  const int64_t rows = 200, cols = 300;
  const std::vector<float> x = test_matrix(rows, cols, 11);
  std::vector<float> q(x.size());
  fp8_fake_quant_ref(x.data(), rows, cols, 128, 128, q.data());
  for (int64_t r0 = 0; r0 < rows; r0 += 128)
    for (int64_t c0 = 0; c0 < cols; c0 += 128) {
      float amax = 0;
      for (int64_t r = r0; r < std::min(rows, r0 + 128); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + 128); ++c) amax = std::max(amax, std::fabs(x[size_t(r * cols + c)]));
      const float s = amax > 0 ? amax / 448.0f : 1.0f;
      for (int64_t r = r0; r < std::min(rows, r0 + 128); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + 128); ++c) {
          const float v = x[size_t(r * cols + c)], got = q[size_t(r * cols + c)];
          const float code = e4m3_nearest(v / s);
          ASSERT_EQ(got, code * s);
          // Half a step of the e4m3 grid: 2^-4 relative for normals, 2^-10 * s below 2^-6 * s.
          ASSERT_LE(std::fabs(got - v), std::max(std::fabs(v) / 16.0f, s / 1024.0f) * 1.0001f) << v;
        }
    }
}

}  // namespace
}  // namespace dsv3::kernels
