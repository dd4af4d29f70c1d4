// Scalar codecs for the storage formats DeepSeek checkpoints use. These are the scalar
// twins every vectorised decoder is tested against (all 256 e4m3 codes, see tests).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace dsv3 {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

//! Round-to-nearest-even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  float mag;
  if (exp == 0) {
    mag = std::ldexp(float(man), -24);
  } else if (exp == 31) {
    mag = man ? NAN : INFINITY;
  } else {
    mag = std::ldexp(float(man | 0x400), int(exp) - 25);
  }
  uint32_t u;
  std::memcpy(&u, &mag, 4);
  u |= sign;
  std::memcpy(&mag, &u, 4);
  return mag;
}

//! FP8 E4M3 "fn" (OCP): bias 7, no infinities, S.1111.111 is NaN, max finite 448.
inline float e4m3_to_f32(uint8_t v) {
  const int sign = v >> 7;
  const int exp = (v >> 3) & 0xf;
  const int man = v & 0x7;
  float mag;
  if (exp == 0xf && man == 0x7) {
    mag = NAN;
  } else if (exp == 0) {
    mag = std::ldexp(float(man), -9);  // subnormal: man/8 * 2^-6
  } else {
    mag = std::ldexp(float(8 + man), exp - 10);  // (1 + man/8) * 2^(exp-7)
  }
  return sign ? -mag : mag;
}

//! Nearest e4m3 value (ties to even), saturating to +-448; NaN maps to the NaN code.
uint8_t f32_to_e4m3(float f);

//! The 256 e4m3 values as floats, for table-driven decoding.
const float* e4m3_table();

//! UE8M0 (power-of-two scale, as in V3.1's scale_fmt): 2^(v-127), 0xff is NaN.
inline float e8m0_to_f32(uint8_t v) { return v == 0xff ? NAN : std::ldexp(1.0f, int(v) - 127); }

}  // namespace dsv3
