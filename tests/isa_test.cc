// Every instruction set this CPU supports runs the same kernels: each must match the scalar
// twins, and the whole model must still match the frozen reference under each of them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "base/numeric.h"
#include "base/rng.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/testgen.h"

namespace dsv3 {
namespace {

using kernels::Isa;

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  const Isa before = kernels::active_isa();
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (kernels::set_isa(i)) out.push_back(i);
  kernels::set_isa(before);
  return out;
}

class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    saved_ = kernels::active_isa();
    ASSERT_TRUE(kernels::set_isa(GetParam()));
  }
  void TearDown() override { kernels::set_isa(saved_); }
  Isa saved_ = Isa::Scalar;
};

struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightMatrix w;
};

Matrix make(io::DType dt, int64_t rows, int64_t cols, int64_t br, int64_t bc, uint64_t seed) {
  Matrix m;
  Rng rng(seed);
  m.w.name = "w";
  m.w.dtype = dt;
  m.w.rows = rows;
  m.w.cols = cols;
  m.bytes.resize(size_t(rows * cols) * io::dtype_size(dt));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = rng.symmetric(1.0f);
    if (dt == io::DType::F32) std::memcpy(&m.bytes[size_t(i) * 4], &v, 4);
    if (dt == io::DType::BF16) {
      const uint16_t h = f32_to_bf16(v);
      std::memcpy(&m.bytes[size_t(i) * 2], &h, 2);
    }
    if (dt == io::DType::F8_E4M3) m.bytes[size_t(i)] = uint8_t(rng.next() & 0xff) == 0x7f ? 0 : uint8_t(rng.next() & 0xff);
  }
  if (dt == io::DType::F8_E4M3) {
    for (size_t i = 0; i < m.bytes.size(); ++i)
      if ((m.bytes[i] & 0x7f) == 0x7f) m.bytes[i] = 0x7e;  // no NaN codes in weights
    m.w.block_rows = br;
    m.w.block_cols = bc;
    m.w.scale_cols = (cols + bc - 1) / bc;
    m.scales.resize(size_t(((rows + br - 1) / br) * m.w.scale_cols));
    for (float& s : m.scales) s = 0.001f + rng.uniform() * 0.01f;
    m.w.scale = m.scales.data();
  }
  m.w.data = m.bytes.data();
  return m;
}

TEST_P(IsaTest, KernelsMatchScalarTwins) {
  struct Shape {
    io::DType dt;
    int64_t rows, cols, br, bc;
  };
  for (const Shape s : {Shape{io::DType::F32, 37, 203, 0, 0}, Shape{io::DType::BF16, 45, 300, 0, 0},
                        Shape{io::DType::F8_E4M3, 200, 300, 128, 128}, Shape{io::DType::F8_E4M3, 33, 100, 16, 24}}) {
    Matrix m = make(s.dt, s.rows, s.cols, s.br, s.bc, 11);
    for (int64_t T : {1, 3, 7, 70}) {
      Rng rng(5);
      std::vector<float> x(size_t(T * s.cols)), xt(size_t(T * s.rows));
      for (float& v : x) v = rng.symmetric(1.0f);
      for (float& v : xt) v = rng.symmetric(1.0f);
      std::vector<float> y(size_t(T * s.rows)), yr(y.size()), z(size_t(T * s.cols)), zr(z.size());
      kernels::matmul(m.w, x.data(), T, y.data());
      kernels::matmul_rows_ref(m.w, 0, s.rows, x.data(), s.cols, T, yr.data(), s.rows);
      kernels::matmul_t_rows(m.w, 0, s.rows, xt.data(), s.rows, T, z.data(), s.cols);
      kernels::matmul_t_rows_ref(m.w, 0, s.rows, xt.data(), s.rows, T, zr.data(), s.cols);
      for (size_t i = 0; i < y.size(); ++i) {
        // Bound from the math: fp32 reassociation over cols terms of |w x| <= max|w|.
        double mag = 0;
        for (int64_t c = 0; c < s.cols; ++c)
          mag += std::fabs(m.w.at(int64_t(i) % s.rows, c) * x[(i / size_t(s.rows)) * size_t(s.cols) + size_t(c)]);
        ASSERT_NEAR(y[i], yr[i], 4e-7 * double(s.cols) * (mag / double(s.cols) + 1e-30) + 1e-6)
            << kernels::isa_name(GetParam()) << " " << io::dtype_name(s.dt) << " T=" << T << " i=" << i;
      }
      for (size_t i = 0; i < z.size(); ++i) ASSERT_NEAR(z[i], zr[i], 1e-4) << "t_rows i=" << i;
      // Decode == prefill: a token's result does not depend on its batch.
      std::vector<float> y1(size_t(s.rows));
      kernels::matmul(m.w, x.data() + (T - 1) * s.cols, 1, y1.data());
      for (int64_t r = 0; r < s.rows; ++r) ASSERT_EQ(y1[size_t(r)], y[size_t((T - 1) * s.rows + r)]);
    }
    std::vector<float> row(size_t(s.cols));
    kernels::decode_row(m.w, s.rows - 1, row.data());
    for (int64_t c = 0; c < s.cols; ++c) ASSERT_EQ(row[size_t(c)], m.w.at(s.rows - 1, c));
  }
  std::vector<float> a(1000), b(1000);
  Rng rng(9);
  for (size_t i = 0; i < a.size(); ++i) a[i] = rng.symmetric(1), b[i] = rng.symmetric(1);
  for (int64_t n : {0, 1, 15, 16, 17, 33, 1000}) EXPECT_NEAR(kernels::dot(a.data(), b.data(), n), kernels::dot_ref(a.data(), b.data(), n), 1e-4);
}

TEST_P(IsaTest, ModelDecodeMatchesPrefill) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / ("dsv3_isa_" + std::to_string(::getpid()));
  model::make_test_model({"tiny", "fp8", 21, 1, dir.string(), false});
  const model::Model m = model::Model::load(dir.string());
  const std::vector<int32_t> toks = {0, 5, 900, 17, 3, 3, 250, 999, 64};
  const int64_t T = int64_t(toks.size()), V = m.config().vocab_size;
  std::vector<float> a(size_t(T * V)), b(a.size()), ref(a.size());
  model::KvCache c1 = m.new_cache(T), c2 = m.new_cache(T), c3 = m.new_cache(T);
  m.forward(toks.data(), T, c1, a.data());
  for (int64_t t = 0; t < T; ++t) m.forward(&toks[t], 1, c2, &b[t * V]);
  kernels::set_reference_kernels(true);
  m.forward(toks.data(), T, c3, ref.data());
  kernels::set_reference_kernels(false);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], 2e-5) << i;
    ASSERT_NEAR(a[i], ref[i], 5e-5) << i;
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Supported, IsaTest, ::testing::ValuesIn(supported_isas()),
                         [](const auto& info) { return std::string(kernels::isa_name(info.param)); });

}  // namespace
}  // namespace dsv3
