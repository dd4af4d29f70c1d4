// The low-precision operands of training's FP8 and BF16 modes (train/low_precision.h), as
// fp32 arrays holding exactly the values the low-precision format can represent:
//  - FP8 ("fake quantization", the DeepSeek-V3 report's §3.3 recipe): a matrix is cut into
//    tiles (1x128 for activations and activation gradients along a GEMM's reduction
//    dimension, 128x1 when the reduction runs down the rows, 128x128 for weights); each tile
//    gets the scale s = amax / 448 from its own max-abs (an all-zero tile keeps s = 1), and
//    every element becomes e4m3(x / s) * s: x / s rounded to the nearest e4m3 value
//    (bf16.h's e4m3_nearest: ties to even, saturating at 448, subnormals on the 2^-9 grid),
//    times s again.
//  - BF16: every element rounded to the nearest BF16 value (ties to even, subnormals to zero).
// The trainer keeps Linear inputs for its backward pass as one byte per e4m3 value
// (e4m3_to_bytes) and widens them back with their scales (fp8_dequant).
// A GEMM over such operands equals the low-precision GEMM up to fp32 summation order: e4m3
// and BF16 products are exact in fp32. The scalar twins (`_ref`) define every bit; the fast
// versions (simd/quant-inl.h, per ISA) are tested against them.
#pragma once

#include <cstdint>

#include "kernels/context.h"

namespace dsv3::kernels {

//! The largest e4m3 magnitude.
constexpr float kE4m3Max = 448.0f;

//! out = fake-quantized x, x and out [rows, cols] row-major (out may equal x), tiles of
//! tile_r x tile_c (edge tiles smaller). Split over ctx's pool by bands of tile_r rows.
void fp8_fake_quant(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c,
                    float* out);
void fp8_fake_quant_ref(const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c, float* out);

//! How many scales fp8_quant writes for [rows, cols] in tile_r x tile_c tiles.
inline int64_t fp8_scale_count(int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c) {
  return ((rows + tile_r - 1) / tile_r) * ((cols + tile_c - 1) / tile_c);
}
//! The same tiles as e4m3 values and scales, the form an FP8 GEMM takes (gemm.h: gemm_fp8):
//! codes [rows, cols] = e4m3(x / s) (codes may equal x), scales [ceil(rows / tile_r)]
//! [ceil(cols / tile_c)] = each tile's s. codes * its tile's scale is fp8_fake_quant's out.
void fp8_quant(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c,
               float* codes, float* scales);
void fp8_quant_ref(const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c, float* codes,
                   float* scales);

//! fp8_quant with the codes written as their bytes (e4m3_to_bytes's) in the same pass.
void fp8_quant_bytes(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c,
                     uint8_t* bytes, float* scales);

//! e4m3 values (fp8_quant's codes) as one byte each (bf16.h: e4m3_byte): the form the
//! trainer keeps Linear inputs in for the backward pass (train/low_precision.h).
void e4m3_to_bytes(Context& ctx, const float* codes, int64_t n, uint8_t* bytes);
void e4m3_to_bytes_ref(const float* codes, int64_t n, uint8_t* bytes);
//! out [rows, cols] = each byte's e4m3 value times its tile's scale, scales laid out as
//! fp8_quant writes them (null: the values alone). For the bytes of fp8_quant's codes this
//! is fp8_fake_quant's out, bit for bit.
void fp8_dequant(Context& ctx, const uint8_t* bytes, const float* scales, int64_t rows, int64_t cols, int64_t tile_r,
                 int64_t tile_c, float* out);
void fp8_dequant_ref(const uint8_t* bytes, const float* scales, int64_t rows, int64_t cols, int64_t tile_r,
                     int64_t tile_c, float* out);

//! out[i] = x[i] rounded to BF16 (out may equal x).
void bf16_fake_round(Context& ctx, const float* x, int64_t n, float* out);
void bf16_fake_round_ref(const float* x, int64_t n, float* out);

}  // namespace dsv3::kernels
