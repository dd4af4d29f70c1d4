#include "kernels/weight_matrix.h"

#include <algorithm>

#include "base/error.h"
#include "base/numeric.h"

namespace dsv3::kernels {

uint64_t WeightMatrix::bytes() const {
  uint64_t b = uint64_t(rows) * uint64_t(cols) * io::dtype_size(dtype);
  if (scale) b += uint64_t((rows + block_rows - 1) / block_rows) * uint64_t(scale_cols) * 4;
  return b;
}

float WeightMatrix::at(int64_t r, int64_t c) const {
  const size_t i = size_t(r) * size_t(cols) + size_t(c);
  switch (dtype) {
    case io::DType::F32: return static_cast<const float*>(data)[i];
    case io::DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case io::DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case io::DType::F8_E4M3:
      return e4m3_to_f32(static_cast<const uint8_t*>(data)[i]) *
             scale[(r / block_rows) * scale_cols + c / block_cols];
    default: fail("weight ", name, ": dtype ", io::dtype_name(dtype), " cannot be used as a matrix");
  }
}

float WeightMatrix::raw_at(int64_t r, int64_t c) const {
  if (dtype != io::DType::F8_E4M3) return at(r, c);
  return e4m3_to_f32(static_cast<const uint8_t*>(data)[size_t(r) * size_t(cols) + size_t(c)]);
}

void decode_row(const WeightMatrix& w, int64_t r, float* out) {
  const size_t base = size_t(r) * size_t(w.cols);
  switch (w.dtype) {
    case io::DType::F32: {
      const float* p = static_cast<const float*>(w.data) + base;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = p[c];
      return;
    }
    case io::DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = bf16_to_f32(p[c]);
      return;
    }
    case io::DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = f16_to_f32(p[c]);
      return;
    }
    case io::DType::F8_E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + base;
      const float* lut = e4m3_table();
      const float* srow = w.scale + (r / w.block_rows) * w.scale_cols;
      for (int64_t c0 = 0, b = 0; c0 < w.cols; c0 += w.block_cols, ++b) {
        const int64_t c1 = std::min(w.cols, c0 + w.block_cols);
        const float s = srow[b];
        for (int64_t c = c0; c < c1; ++c) out[c] = lut[p[c]] * s;
      }
      return;
    }
    default: fail("weight ", w.name, ": dtype ", io::dtype_name(w.dtype), " cannot be used as a matrix");
  }
}

}  // namespace dsv3::kernels
