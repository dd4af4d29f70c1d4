// Random weight matrices in every stored format (FP8 with block scales), for kernel tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/numeric.h"
#include "base/rng.h"
#include "kernels/matmul.h"

namespace dsv3 {

// A weight matrix with its own storage.
struct TestMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> scale;
  kernels::WeightMatrix w;
};

struct MatrixCase {
  const char* label;
  io::DType dtype;
  int64_t rows, cols;
  int64_t block_rows = 128, block_cols = 128;  // FP8 only
};

inline void PrintTo(const MatrixCase& mc, std::ostream* os) {
  *os << mc.label << " [" << mc.rows << ", " << mc.cols << "]";
  if (mc.dtype == io::DType::F8_E4M3) *os << " blocks " << mc.block_rows << "x" << mc.block_cols;
}

inline TestMatrix make_matrix(const MatrixCase& mc, uint64_t seed) {
  Rng rng(seed);
  TestMatrix m;
  const int64_t n = mc.rows * mc.cols;
  m.bytes.resize(size_t(n) * io::dtype_size(mc.dtype));
  for (int64_t i = 0; i < n; ++i) {
    switch (mc.dtype) {
      case io::DType::F32: {
        const float v = rng.symmetric(1.0f);
        std::memcpy(&m.bytes[4 * i], &v, 4);
        break;
      }
      case io::DType::BF16: {
        const uint16_t h = f32_to_bf16(rng.symmetric(1.0f));
        std::memcpy(&m.bytes[2 * i], &h, 2);
        break;
      }
      case io::DType::F16: {  // finite normals in [2^-5, 2^6) and some subnormals, both signs
        const uint64_t r = rng.next();
        const uint16_t exp = uint16_t(r % 22);
        const uint16_t h = uint16_t(((r >> 8) & 1) << 15 | exp << 10 | ((r >> 16) & 0x3ff));
        std::memcpy(&m.bytes[2 * i], &h, 2);
        break;
      }
      case io::DType::F8_E4M3: {
        uint8_t code;
        do code = uint8_t(rng.next() >> 56);
        while ((code & 0x7f) == 0x7f);  // no NaN codes
        m.bytes[size_t(i)] = code;
        break;
      }
      default: ADD_FAILURE() << "unsupported test dtype";
    }
  }
  kernels::WeightMatrix& w = m.w;
  w.name = std::string("test.") + mc.label;
  w.dtype = mc.dtype;
  w.rows = mc.rows;
  w.cols = mc.cols;
  w.data = m.bytes.data();
  if (mc.dtype == io::DType::F8_E4M3) {
    w.block_rows = mc.block_rows;
    w.block_cols = mc.block_cols;
    const int64_t sr = (mc.rows + mc.block_rows - 1) / mc.block_rows;
    w.scale_cols = (mc.cols + mc.block_cols - 1) / mc.block_cols;
    m.scale.resize(size_t(sr * w.scale_cols));
    for (float& s : m.scale) s = std::ldexp(0.5f + rng.uniform(), -8);  // like amax/448
    w.scale = m.scale.data();
  }
  return m;
}

inline std::vector<float> random_vector(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.symmetric(2.0f);
  return v;
}

}  // namespace dsv3
