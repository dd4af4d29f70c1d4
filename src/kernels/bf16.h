// The BF16 arithmetic every `--numerics bf16` kernel computes, defined by scalar code: the
// rounding of fp32 to BF16, and the one summation order of a BF16 dot product. Every fast
// BF16 kernel (simd/matmul_bf16-inl.h, native vdpbf16ps or emulated with fp32 FMAs) gives
// these results bit for bit, whatever the ISA, T, tiling or thread count.
//
// The dot product is the one AVX512_BF16's vdpbf16ps defines: the sequence is cut into
// chunks of 32; lane i of 16 fp32 sums adds the
// exact product of elements 2i+1, then of elements 2i, of each chunk in turn (each add
// rounded to nearest even); then the lanes are summed as a tree (i += 8, 4, 2, 1). BF16
// inputs below FLT_MIN count as zero, as the instruction reads them. (Measured on a
// Sapphire Rapids-class CPU; isa.cc checks any CPU at start-up before it uses the instruction.)
//
// FP8 weights are taken in "kernel order": within each 64 elements, the byte-table
// conversion (vpermi2b, then unpacking bytes into words per 128-bit lane) yields elements
// 0-7, 16-23, 32-39, 48-55, then 8-15, 24-31, 40-47, 56-63. The activations are laid out in
// the same order, so the products pair up; only the summation order differs from natural.
//
// The helpers are `static`, so every translation unit has its own copy: the per-ISA kernel
// files (built with AVX-512 flags) include this too, and a shared inline copy could be the
// one the linker keeps for generic code, which would then crash on older CPUs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace dsv3::kernels {

constexpr int kBf16Lanes = 16;
constexpr int kBf16Chunk = 32;
//! Sequences are padded with zeros to a multiple of this (the FP8 reorder's span).
constexpr int kBf16Block = 64;

static inline int64_t bf16_padded(int64_t n) { return (n + kBf16Block - 1) / kBf16Block * kBf16Block; }

//! fp32 to BF16, rounding to nearest even; NaN stays NaN (quieted); values below FLT_MIN
//! become signed zero (as vcvtneps2bf16 does).
static inline uint16_t bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0) return uint16_t((u >> 16) & 0x8000u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

//! A BF16 input as the dot product reads it: subnormals as zero.
static inline float bf16_operand(uint16_t h) { return (h & 0x7F80u) == 0 ? 0.0f : bf16_value(h); }

//! The element of a 64-block at kernel-order position p (FP8 weights and their activations).
static inline int fp8_order_element(int p) {
  const int half = p / 32, j = (p % 32) / 8, r = p % 8;
  return 16 * j + 8 * half + r;
}

//! The scalar twin of every BF16 dot product: a and b hold n values in summation order
//! (n a multiple of kBf16Chunk).
static inline float bf16_dot_ref(const uint16_t* a, const uint16_t* b, int64_t n) {
  float lane[kBf16Lanes] = {};
  for (int64_t c = 0; c < n; c += kBf16Chunk)
    for (int i = 0; i < kBf16Lanes; ++i) {
      lane[i] += bf16_operand(a[c + 2 * i + 1]) * bf16_operand(b[c + 2 * i + 1]);
      lane[i] += bf16_operand(a[c + 2 * i]) * bf16_operand(b[c + 2 * i]);
    }
  for (int w = kBf16Lanes / 2; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) lane[i] += lane[i + w];
  return lane[0];
}

//! fp32 -> the nearest e4m3 value (ties to even, saturating at 448) as BF16 bits: normals
//! keep 3 mantissa bits, below 2^-6 the grid is 2^-9. The activations of `--numerics fp8`.
static inline uint16_t e4m3_round_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint32_t sign = u & 0x80000000u;
  float a;
  const uint32_t au = u & 0x7FFFFFFFu;
  std::memcpy(&a, &au, 4);
  float r;
  if (!(a == a)) return 0x7FC0;  // NaN
  if (a >= 448.0f) {
    r = 448.0f;
  } else if (a >= 0.015625f) {  // 2^-6: normal e4m3, round the mantissa to 3 bits
    uint32_t q = au + 0x7FFFFu + ((au >> 20) & 1u);
    q &= 0xFFF00000u;
    std::memcpy(&r, &q, 4);
    if (r > 448.0f) r = 448.0f;
  } else {  // subnormal grid 2^-9, ties to even
    r = __builtin_nearbyintf(a * 512.0f) * (1.0f / 512.0f);
  }
  uint32_t ru;
  std::memcpy(&ru, &r, 4);
  return uint16_t(((ru | sign) >> 16));
}

//! v rounded to the nearest e4m3 value as fp32 (ties to even; magnitudes above 448,
//! infinities included, saturate to 448; NaN stays NaN): training's FP8 operands
//! (kernels/quant.h). Written as the bit steps the SIMD versions take lane by lane: the
//! mantissa rounded to 3 bits (normals), or the value put on the 2^-9 grid by adding and
//! subtracting 1.5 * 2^23 (below 2^-6; exact steps, so FMA contraction cannot change them).
static inline float e4m3_nearest(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint32_t sign = u & 0x80000000u, au = u & 0x7FFFFFFFu;
  float a, r;
  std::memcpy(&a, &au, 4);
  if (a >= 0.015625f) {
    const uint32_t q = (au + 0x7FFFFu + ((au >> 20) & 1u)) & 0xFFF00000u;
    std::memcpy(&r, &q, 4);
  } else {
    r = ((a * 512.0f + 12582912.0f) - 12582912.0f) * (1.0f / 512.0f);
  }
  if (r > 448.0f) r = 448.0f;
  uint32_t ru;
  std::memcpy(&ru, &r, 4);
  ru |= sign;
  std::memcpy(&r, &ru, 4);
  return r;
}

//! The activation scale of one 128-channel block: max(amax, 1e-4) / 448, rounded up to a
//! power of two for ue8m0.
static inline float fp8_act_scale(float amax, bool ue8m0) {
  const float s = (amax > 1e-4f ? amax : 1e-4f) / 448.0f;
  if (!ue8m0) return s;
  uint32_t u;
  std::memcpy(&u, &s, 4);
  if (u & 0x7FFFFFu) u = (u & 0x7F800000u) + 0x00800000u;
  float p;
  std::memcpy(&p, &u, 4);
  return p;
}

//! The scalar twin of `--numerics fp8`'s products: a and b hold n values in summation order
//! (n a multiple of `block`, itself a multiple of kBf16Chunk); each block's 16 lane sums (as
//! bf16_dot_ref adds them) are scaled by scale[block] into 16 running sums (one fused
//! multiply-add each), then the lanes are summed as a tree.
static inline float fp8_block_dot_ref(const uint16_t* a, const uint16_t* b, int64_t n, int64_t block,
                                      const float* scale) {
  float total[kBf16Lanes] = {};
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    float lane[kBf16Lanes] = {};
    for (int64_t c = b0; c < b0 + block; c += kBf16Chunk)
      for (int i = 0; i < kBf16Lanes; ++i) {
        lane[i] += bf16_operand(a[c + 2 * i + 1]) * bf16_operand(b[c + 2 * i + 1]);
        lane[i] += bf16_operand(a[c + 2 * i]) * bf16_operand(b[c + 2 * i]);
      }
    for (int i = 0; i < kBf16Lanes; ++i) total[i] = __builtin_fmaf(lane[i], scale[b0 / block], total[i]);
  }
  for (int w = kBf16Lanes / 2; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) total[i] += total[i + w];
  return total[0];
}

//! The BF16 bits of the e4m3 value with magnitude bits m (0..127; 127 is NaN): every e4m3
//! value is exact in BF16, subnormals included. For the byte tables of the FP8 widening.
static constexpr uint16_t e4m3_magnitude_bf16(int m) {
  if (m == 0x7F) return 0x7FC0;
  int e = m >> 3, f = m & 7;
  if (e == 0) {  // subnormal: f * 2^-9, normalized
    if (f == 0) return 0;
    e = 1;
    while (f < 8) {
      f <<= 1;
      --e;
    }
    f &= 7;
  }
  return uint16_t(((e + 120) << 7) | (f << 4));
}

//! The one-byte encoding (sign, 4 exponent bits of bias 7, 3 mantissa bits: OCP FP8 E4M3) of
//! v, an e4m3 value (e4m3_nearest's results); NaN -> 0x7F with its sign.
static inline uint8_t e4m3_byte(float v) {
  const uint8_t sign = std::signbit(v) ? 0x80 : 0;
  const float a = std::fabs(v);
  if (std::isnan(a)) return uint8_t(sign | 0x7F);
  if (a < 0.015625f) return uint8_t(sign | int(a * 512.0f));  // subnormal: k * 2^-9
  int e = 0;
  const float f = std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  return uint8_t(sign | ((e - 1 + 7) << 3) | int((f * 2.0f - 1.0f) * 8.0f));
}

//! The e4m3 value of byte b (e4m3_byte's inverse; 0x7F and 0xFF are NaN).
static inline float e4m3_from_byte(uint8_t b) {
  const float a = bf16_value(e4m3_magnitude_bf16(b & 0x7F));
  return (b & 0x80) ? -a : a;
}

}  // namespace dsv3::kernels
