// The scalar codecs of src/base/numeric.h, checked against expectations computed here from
// the format definitions (not from the code under test).
#include "base/numeric.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

#include "test_util.h"

namespace dsv3 {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- FP8 E4M3 ------------------------------------------------------------------------------

// E4M3 "fn": 1 sign, 4 exponent (bias 7), 3 mantissa bits; exponent 0 is subnormal
// (man/8 * 2^-6); no infinities; S.1111.111 is NaN. Computed in double from the definition.
double e4m3_expected(int code) {
  const int sign = code >> 7, exp = (code >> 3) & 15, man = code & 7;
  if (exp == 15 && man == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = exp == 0 ? (man / 8.0) * std::pow(2.0, -6) : (1.0 + man / 8.0) * std::pow(2.0, exp - 7);
  return sign ? -mag : mag;
}

bool is_e4m3_nan(uint8_t code) { return (code & 0x7f) == 0x7f; }

TEST(NumericE4m3, DecodesAll256Codes) {
  const float* table = e4m3_table();
  int nans = 0;
  for (int code = 0; code < 256; ++code) {
    SCOPED_TRACE(code);
    const double want = e4m3_expected(code);
    const float got = e4m3_to_f32(uint8_t(code));
    if (std::isnan(want)) {
      ++nans;
      EXPECT_TRUE(std::isnan(got));
      EXPECT_TRUE(std::isnan(table[code]));
      continue;
    }
    EXPECT_EQ(double(got), want);
    EXPECT_EQ(std::signbit(got), code >= 0x80);  // -0 keeps its sign
    EXPECT_EQ(testutil::bits(table[code]), testutil::bits(got));
  }
  EXPECT_EQ(nans, 2);  // only 0x7f and 0xff
}

TEST(NumericE4m3, LandmarkValues) {
  EXPECT_EQ(e4m3_to_f32(0x00), 0.0f);
  EXPECT_FALSE(std::signbit(e4m3_to_f32(0x00)));
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0x80)));
  EXPECT_EQ(e4m3_to_f32(0x01), 0.001953125f);  // smallest subnormal 2^-9
  EXPECT_EQ(e4m3_to_f32(0x07), 0.013671875f);  // largest subnormal 7 * 2^-9
  EXPECT_EQ(e4m3_to_f32(0x08), 0.015625f);     // smallest normal 2^-6
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_f32(0x39), 1.125f);
  EXPECT_EQ(e4m3_to_f32(0x40), 2.0f);
  EXPECT_EQ(e4m3_to_f32(0xc0), -2.0f);
  EXPECT_EQ(e4m3_to_f32(0x78), 256.0f);
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);  // max finite
  EXPECT_EQ(e4m3_to_f32(0xfe), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7f)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xff)));
}

TEST(NumericE4m3, EncodeRoundTripsEveryFiniteCode) {
  for (int code = 0; code < 256; ++code) {
    if (is_e4m3_nan(uint8_t(code))) continue;
    EXPECT_EQ(int(f32_to_e4m3(float(e4m3_expected(code)))), code) << "code " << code;
  }
}

// Between every pair of neighbouring codes: values nearer one side go to it, the exact
// midpoint goes to the even code (the code whose last mantissa bit is 0). Both signs.
TEST(NumericE4m3, EncodeRoundsToNearestTiesToEven) {
  for (int k = 0; k < 0x7e; ++k) {
    const float lo = float(e4m3_expected(k)), hi = float(e4m3_expected(k + 1));
    const float mid = (lo + hi) / 2;  // exact: e4m3 neighbours are far apart in fp32
    ASSERT_EQ(double(mid), (e4m3_expected(k) + e4m3_expected(k + 1)) / 2);
    const int even = (k % 2 == 0) ? k : k + 1;
    for (int sign : {0, 0x80}) {
      const float s = sign ? -1.0f : 1.0f;
      SCOPED_TRACE(testing::Message() << "between codes " << (sign | k) << " and " << (sign | (k + 1)));
      EXPECT_EQ(int(f32_to_e4m3(s * std::nextafter(lo, hi))), sign | k);
      EXPECT_EQ(int(f32_to_e4m3(s * std::nextafter(mid, lo))), sign | k);
      EXPECT_EQ(int(f32_to_e4m3(s * mid)), sign | even);
      EXPECT_EQ(int(f32_to_e4m3(s * std::nextafter(mid, hi))), sign | (k + 1));
      EXPECT_EQ(int(f32_to_e4m3(s * std::nextafter(hi, lo))), sign | (k + 1));
    }
  }
}

TEST(NumericE4m3, EncodeBelowSmallestSubnormal) {
  const float tiny = 0.001953125f;  // 2^-9
  EXPECT_EQ(f32_to_e4m3(tiny / 2), 0x00);  // tie between 0 and 2^-9: even code 0
  EXPECT_EQ(f32_to_e4m3(std::nextafter(tiny / 2, 1.0f)), 0x01);
  EXPECT_EQ(f32_to_e4m3(1e-30f), 0x00);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(f32_to_e4m3(-1e-30f), 0x80);  // -0
  EXPECT_EQ(f32_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
}

TEST(NumericE4m3, EncodeSaturatesToMaxFinite) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {448.0f, std::nextafter(448.0f, inf), 464.0f, 480.0f, 1000.0f, 1e30f,
                  std::numeric_limits<float>::max(), inf}) {
    EXPECT_EQ(f32_to_e4m3(v), 0x7e) << v;
    EXPECT_EQ(f32_to_e4m3(-v), 0xfe) << -v;
  }
  // Just below the top: 416 is the code below 448; 432 is their midpoint (ties to 448, even).
  EXPECT_EQ(f32_to_e4m3(432.0f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(std::nextafter(432.0f, 0.0f)), 0x7d);
}

TEST(NumericE4m3, EncodeNanGivesNanCode) {
  for (float nan : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::signaling_NaN(), from_bits(0x7f800001u)}) {
    const uint8_t code = f32_to_e4m3(nan);
    EXPECT_TRUE(is_e4m3_nan(code)) << int(code);
    EXPECT_TRUE(std::isnan(e4m3_to_f32(code)));
  }
}

// ---- BF16 ----------------------------------------------------------------------------------

TEST(NumericBf16, DecodeIsTheUpperHalfOfF32) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x3f81), 1.0f + 1.0f / 128);
  EXPECT_EQ(bf16_to_f32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
  for (uint32_t h = 0; h < 0x10000; ++h) EXPECT_EQ(testutil::bits(bf16_to_f32(uint16_t(h))), h << 16);
}

TEST(NumericBf16, EncodeRoundTripsEveryCode) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = from_bits(h << 16);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f)))) << h;
      continue;
    }
    EXPECT_EQ(f32_to_bf16(f), h) << h;
  }
}

// Between neighbouring bf16 values h and h+1 (same sign): the fp32 values just above h, just
// below/at/above the midpoint, and just below h+1.
TEST(NumericBf16, EncodeRoundsToNearestTiesToEven) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t m = 0; m < 0x7f80; ++m) {  // h+1 may be infinity (overflow rounds up to it)
      const uint32_t h = sign | m;
      const uint32_t lo = h << 16, mid = lo | 0x8000u, hi = (h + 1) << 16;
      const uint32_t even = (h & 1) ? h + 1 : h;
      ASSERT_EQ(f32_to_bf16(from_bits(lo + 1)), h);
      ASSERT_EQ(f32_to_bf16(from_bits(mid - 1)), h);
      ASSERT_EQ(f32_to_bf16(from_bits(mid)), even) << "tie at " << std::hex << mid;
      ASSERT_EQ(f32_to_bf16(from_bits(mid + 1)), h + 1);
      ASSERT_EQ(f32_to_bf16(from_bits(hi - 1)), h + 1);
    }
  }
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to +inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);                   // tie, even is 1.0
  EXPECT_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);                   // tie, even is up
}

TEST(NumericBf16, EncodeKeepsNanANan) {
  // Payloads only in the low 16 bits: truncation would turn these into infinities.
  for (uint32_t u : {0x7f800001u, 0x7f80ffffu, 0xff800001u, 0x7fc00000u, 0xffc00000u, 0x7fffffffu}) {
    const uint16_t h = f32_to_bf16(from_bits(u));
    EXPECT_TRUE(std::isnan(bf16_to_f32(h))) << std::hex << u << " -> " << h;
    EXPECT_EQ(h & 0x8000, (u >> 16) & 0x8000) << "sign kept";
  }
}

// ---- F16 -----------------------------------------------------------------------------------

TEST(NumericF16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f16_to_f32(0x0000), 0.0f);
  EXPECT_FALSE(std::signbit(f16_to_f32(0x0000)));
  EXPECT_EQ(f16_to_f32(0x8000), 0.0f);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));           // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));         // largest subnormal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));            // smallest normal
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x3c01), 1.0f + std::ldexp(1.0f, -10));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);                         // max finite
  EXPECT_EQ(f16_to_f32(0xfbff), -65504.0f);
  EXPECT_EQ(f16_to_f32(0x7c00), inf);
  EXPECT_EQ(f16_to_f32(0xfc00), -inf);
  for (uint16_t nan : {0x7c01, 0x7e00, 0x7fff, 0xfc01, 0xfe00})
    EXPECT_TRUE(std::isnan(f16_to_f32(nan))) << std::hex << nan;
}

TEST(NumericF16, DecodesAllCodes) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    const float got = f16_to_f32(uint16_t(h));
    if (exp == 31) {
      if (man) EXPECT_TRUE(std::isnan(got)) << h;
      else EXPECT_EQ(got, sign ? -INFINITY : INFINITY) << h;
      continue;
    }
    const double mag = exp == 0 ? man * std::pow(2.0, -24) : (1.0 + man / 1024.0) * std::pow(2.0, exp - 15);
    EXPECT_EQ(double(got), sign ? -mag : mag) << h;
    EXPECT_EQ(std::signbit(got), sign == 1) << h;
  }
}

// ---- UE8M0 ---------------------------------------------------------------------------------

TEST(NumericE8m0, PowersOfTwo) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(128), 2.0f);
  EXPECT_EQ(e8m0_to_f32(126), 0.5f);
  EXPECT_EQ(e8m0_to_f32(0), std::ldexp(1.0f, -127));  // an fp32 subnormal, still exact
  EXPECT_GT(e8m0_to_f32(0), 0.0f);
  EXPECT_EQ(e8m0_to_f32(254), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
  for (int v = 0; v < 255; ++v) EXPECT_EQ(double(e8m0_to_f32(uint8_t(v))), std::pow(2.0, v - 127)) << v;
}

}  // namespace
}  // namespace dsv3
