// A checkpoint weight matrix in its stored format (F32, BF16, F16, or FP8 e4m3 with block
// scales), viewing mmapped bytes: kernels decode it on the fly, so there is never a
// dequantized copy. at() is the scalar definition every decoder is tested against.
#pragma once

#include <cstdint>
#include <string>

#include "io/dtype.h"

namespace dsv3::kernels {

//! A [rows, cols] row-major weight matrix (Hugging Face [out, in]).
struct WeightMatrix {
  std::string name;
  io::DType dtype = io::DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  // FP8 only: scale_inv as fp32, [ceil(rows/block_rows), ceil(cols/block_cols)] row-major.
  const float* scale = nullptr;
  int64_t block_rows = 128, block_cols = 128;
  int64_t scale_cols = 0;
  // FP8 only: `--numerics fp8` rounds the activations' scales up to powers of two (V3.1's
  // quantization_config.scale_fmt "ue8m0").
  bool ue8m0 = false;
  // False for activations viewed as a matrix (the naive attention's keys and values): the
  // products do not count them as weight bytes read (weight_bytes_read, the bench's bytes).
  bool is_weight = true;

  bool empty() const { return data == nullptr; }
  uint64_t bytes() const;  // stored bytes, scales included
  //! Element (r, c) dequantized; the scalar twin of every decoder.
  float at(int64_t r, int64_t c) const;
  //! Element (r, c) without its FP8 block scale (the plain e4m3 value); at() otherwise.
  float raw_at(int64_t r, int64_t c) const;
};

//! Decodes row r (all cols) into out, exactly as at() does element by element. Throws
//! dsv3::Error naming the matrix for a dtype that is not a weight format.
void decode_row(const WeightMatrix& w, int64_t r, float* out);

}  // namespace dsv3::kernels
