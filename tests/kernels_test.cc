// The matrix kernels (src/kernels/matmul.h) against their scalar twins and against exact
// (double) products, for every stored dtype and for FP8 with partial edge blocks; and the
// thread pool they run on (src/threading/pool.h).
//
// Tolerances come from the standard bound for a float dot product of n terms evaluated in
// any order: |computed - exact| <= gamma(n) * sum |w_i x_i|, gamma(n) = n u / (1 - n u),
// u = 2^-24. Weight decoding itself must be exact (decode_row == kernels::WeightMatrix::at bit for bit).
#include "kernels/matmul.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/numeric.h"
#include "base/rng.h"
#include "matrix_util.h"
#include "test_util.h"
#include "threading/pool.h"
#include "isa_util.h"
#include "kernels/context.h"
#include "kernels/gemm.h"
#include "kernels/attention.h"
#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/vector_ops.h"

namespace dsv3 {
namespace {

double gamma_bound(int64_t n) {
  const double u = std::ldexp(1.0, -24);
  return double(n) * u / (1.0 - double(n) * u);
}

using testutil::bits;

// Restores the kernel mode on scope exit, so a failing test cannot leak reference mode.
struct ReferenceKernels {
  explicit ReferenceKernels(bool on) : saved(kernels::reference_kernels()) { kernels::set_reference_kernels(on); }
  ~ReferenceKernels() { kernels::set_reference_kernels(saved); }
  bool saved;
};



// The kernel case table, under every ISA: each stored format and shape against the scalar
// twins, exact products, and the fast path's own guarantees (batch and thread independence).
class KernelsTest : public ::testing::TestWithParam<std::tuple<MatrixCase, kernels::Isa>> {
 protected:
  void SetUp() override {
    isa_ = std::make_unique<testutil::IsaScope>(std::get<1>(GetParam()));
    ASSERT_TRUE(isa_->ok());
    m_ = make_matrix(mc(), 1000 + uint64_t(mc().dtype));
  }
  void TearDown() override { isa_.reset(); }
  const MatrixCase& mc() const { return std::get<0>(GetParam()); }
  const kernels::WeightMatrix& w() const { return m_.w; }
  kernels::Context& ctx() { return ctx_; }
  float* scratch() { return ctx_.scratch(0, kernels::matmul_scratch(w())); }

  // Exact y[t][r - r0] for matmul_rows and the sum of |terms|.
  std::pair<double, double> exact_row(int64_t r, const float* x) const {
    double s = 0, a = 0;
    for (int64_t c = 0; c < w().cols; ++c) {
      const double term = double(w().at(r, c)) * double(x[c]);
      s += term;
      a += std::fabs(term);
    }
    return {s, a};
  }
  void batch_matches_single_tokens(int64_t T);

  TestMatrix m_;
  std::unique_ptr<testutil::IsaScope> isa_;
  kernels::Context ctx_{testutil::pool()};
};

TEST_P(KernelsTest, StoredBytes) {
  const MatrixCase& mc = this->mc();
  uint64_t want = uint64_t(mc.rows * mc.cols) * io::dtype_size(mc.dtype);
  if (mc.dtype == io::DType::F8_E4M3) want += m_.scale.size() * 4;
  EXPECT_EQ(w().bytes(), want);
}

TEST_P(KernelsTest, AtDecodesTheStoredFormat) {
  // Spot-check at() against the scalar codecs plus the block scale it should pick.
  const MatrixCase& mc = this->mc();
  for (int64_t r : {int64_t(0), mc.rows / 2, mc.rows - 1})
    for (int64_t c : {int64_t(0), mc.cols / 3, mc.cols - 1}) {
      const size_t i = size_t(r * mc.cols + c);
      float want = 0;
      switch (mc.dtype) {
        case io::DType::F32: std::memcpy(&want, &m_.bytes[4 * i], 4); break;
        case io::DType::BF16: { uint16_t h; std::memcpy(&h, &m_.bytes[2 * i], 2); want = bf16_to_f32(h); break; }
        case io::DType::F16: { uint16_t h; std::memcpy(&h, &m_.bytes[2 * i], 2); want = f16_to_f32(h); break; }
        case io::DType::F8_E4M3:
          want = e4m3_to_f32(m_.bytes[i]) * m_.scale[size_t((r / mc.block_rows) * w().scale_cols + c / mc.block_cols)];
          break;
        default: break;
      }
      EXPECT_EQ(bits(w().at(r, c)), bits(want)) << r << "," << c;
    }
}

TEST_P(KernelsTest, DecodeRowMatchesAt) {
  std::vector<float> row(static_cast<size_t>(w().cols) + 1, 777.0f);
  for (int64_t r = 0; r < w().rows; ++r) {
    kernels::decode_row(w(), r, row.data());
    for (int64_t c = 0; c < w().cols; ++c) ASSERT_EQ(bits(row[size_t(c)]), bits(w().at(r, c))) << r << "," << c;
    ASSERT_EQ(row.back(), 777.0f) << "wrote past the row";
  }
}

TEST_P(KernelsTest, MatmulRowsMatchesReference) {
  const int64_t R = w().rows, C = w().cols;
  for (int64_t T : {1, 7}) {
    for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, R}, {R / 3, R - R / 4}}) {
      SCOPED_TRACE(testing::Message() << "T=" << T << " rows [" << r0 << ", " << r1 << ")");
      const int64_t xs = C + 3, ys = (r1 - r0) + 5;  // strides with padding
      const std::vector<float> x = random_vector(T * xs, 7 + T);
      std::vector<float> fast(static_cast<size_t>(T * ys), -9.0f), ref(static_cast<size_t>(T * ys), -9.0f);
      kernels::matmul_rows(w(), r0, r1, x.data(), xs, T, fast.data(), ys, scratch());
      kernels::matmul_rows_ref(w(), r0, r1, x.data(), xs, T, ref.data(), ys);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t r = r0; r < r1; ++r) {
          const auto [exact, abs_sum] = exact_row(r, &x[size_t(t * xs)]);
          const double tol = gamma_bound(C) * abs_sum + 1e-30;
          const size_t i = size_t(t * ys + (r - r0));
          ASSERT_LE(std::fabs(fast[i] - exact), tol) << "fast t=" << t << " r=" << r;
          ASSERT_LE(std::fabs(ref[i] - exact), tol) << "ref t=" << t << " r=" << r;
        }
        for (int64_t p = r1 - r0; p < ys; ++p) {  // padding untouched
          EXPECT_EQ(fast[size_t(t * ys + p)], -9.0f);
          EXPECT_EQ(ref[size_t(t * ys + p)], -9.0f);
        }
      }
    }
  }
}

TEST_P(KernelsTest, MatmulTRowsMatchesReference) {
  const int64_t R = w().rows, C = w().cols;
  for (int64_t T : {1, 7}) {
    for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, R}, {R / 3, R - R / 4}}) {
      SCOPED_TRACE(testing::Message() << "T=" << T << " rows [" << r0 << ", " << r1 << ")");
      const int64_t n = r1 - r0, xs = n + 2, ys = C + 4;
      const std::vector<float> x = random_vector(T * xs, 17 + T);
      std::vector<float> fast(static_cast<size_t>(T * ys), -9.0f), ref(static_cast<size_t>(T * ys), -9.0f);
      kernels::matmul_t_rows(w(), r0, r1, x.data(), xs, T, fast.data(), ys, scratch());
      kernels::matmul_t_rows_ref(w(), r0, r1, x.data(), xs, T, ref.data(), ys);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t c = 0; c < C; ++c) {
          double exact = 0, abs_sum = 0;
          for (int64_t r = r0; r < r1; ++r) {
            const double term = double(x[size_t(t * xs + (r - r0))]) * double(w().at(r, c));
            exact += term;
            abs_sum += std::fabs(term);
          }
          const double tol = gamma_bound(n) * abs_sum + 1e-30;
          const size_t i = size_t(t * ys + c);
          ASSERT_LE(std::fabs(fast[i] - exact), tol) << "fast t=" << t << " c=" << c;
          ASSERT_LE(std::fabs(ref[i] - exact), tol) << "ref t=" << t << " c=" << c;
        }
        for (int64_t p = C; p < ys; ++p) {
          EXPECT_EQ(fast[size_t(t * ys + p)], -9.0f);
          EXPECT_EQ(ref[size_t(t * ys + p)], -9.0f);
        }
      }
    }
  }
}

TEST_P(KernelsTest, MatmulIsMatmulRowsOverAllRows) {
  const int64_t R = w().rows, C = w().cols;
  for (int64_t T : {1, 7}) {
    const std::vector<float> x = random_vector(T * C, 27 + T);
    std::vector<float> y(static_cast<size_t>(T * R)), rows(static_cast<size_t>(T * R));
    kernels::matmul(ctx(), w(), x.data(), T, y.data());
    kernels::matmul_rows(w(), 0, R, x.data(), C, T, rows.data(), R, scratch());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(bits(y[i]), bits(rows[i])) << "T=" << T << " i=" << i;
  }
}

// Each token's results are bit-identical whether it is computed alone (decode) or in a batch
// (7 tokens: the in-place path; 70: the panel path, over two activation chunks), for every
// entry point of the fast path.
TEST_P(KernelsTest, ResultsDoNotDependOnBatchSize) {
  for (const int64_t T : {7, 70}) {
    SCOPED_TRACE("T=" + std::to_string(T));
    batch_matches_single_tokens(T);
  }
}

void KernelsTest::batch_matches_single_tokens(int64_t T) {
  const int64_t R = w().rows, C = w().cols;
  const std::vector<float> x = random_vector(T * C, 37);
  const std::vector<float> xt = random_vector(T * R, 38);
  std::vector<float> y7(static_cast<size_t>(T * R)), m7(static_cast<size_t>(T * R)), t7(static_cast<size_t>(T * C));
  kernels::matmul_rows(w(), 0, R, x.data(), C, T, y7.data(), R, scratch());
  kernels::matmul(ctx(), w(), x.data(), T, m7.data());
  kernels::matmul_t_rows(w(), 0, R, xt.data(), R, T, t7.data(), C, scratch());
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> y1(static_cast<size_t>(R)), m1(static_cast<size_t>(R)), t1(static_cast<size_t>(C));
    kernels::matmul_rows(w(), 0, R, &x[size_t(t * C)], C, 1, y1.data(), R, scratch());
    kernels::matmul(ctx(), w(), &x[size_t(t * C)], 1, m1.data());
    kernels::matmul_t_rows(w(), 0, R, &xt[size_t(t * R)], R, 1, t1.data(), C, scratch());
    for (int64_t r = 0; r < R; ++r) {
      ASSERT_EQ(bits(y1[size_t(r)]), bits(y7[size_t(t * R + r)])) << "matmul_rows t=" << t << " r=" << r;
      ASSERT_EQ(bits(m1[size_t(r)]), bits(m7[size_t(t * R + r)])) << "matmul t=" << t << " r=" << r;
    }
    for (int64_t c = 0; c < C; ++c)
      ASSERT_EQ(bits(t1[size_t(c)]), bits(t7[size_t(t * C + c)])) << "matmul_t_rows t=" << t << " c=" << c;
  }
}

// Splitting rows over any number of threads gives the same bits as one call over all rows.
TEST_P(KernelsTest, ResultsDoNotDependOnThreadCount) {
  const int64_t R = w().rows, C = w().cols, T = 3;
  const std::vector<float> x = random_vector(T * C, 47);
  std::vector<float> whole(static_cast<size_t>(T * R));
  kernels::matmul_rows(w(), 0, R, x.data(), C, T, whole.data(), R, scratch());
  for (int threads : {1, 2, 3, 5, 8}) {
    ThreadPool pool(threads);
    kernels::Context c(pool);
    std::vector<float> y(static_cast<size_t>(T * R), NAN), z(static_cast<size_t>(T * R), NAN);
    pool.parallel_for(R, [&](int th, int64_t r0, int64_t r1) {
      kernels::matmul_rows(w(), r0, r1, x.data(), C, T, y.data() + r0, R, c.scratch(th, kernels::matmul_scratch(w())));
    });
    kernels::matmul(c, w(), x.data(), T, z.data());
    for (size_t i = 0; i < z.size(); ++i) ASSERT_EQ(bits(z[i]), bits(whole[i])) << "matmul, " << threads << " threads";
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(bits(y[i]), bits(whole[i])) << threads << " threads, i=" << i;
  }
}

TEST_P(KernelsTest, ReferenceSwitchRoutesToScalarTwins) {
  const int64_t R = w().rows, C = w().cols, T = 7;
  const std::vector<float> x = random_vector(T * C, 57);
  const std::vector<float> xt = random_vector(T * R, 58);
  std::vector<float> ref(static_cast<size_t>(T * R)), tref(static_cast<size_t>(T * C));
  kernels::matmul_rows_ref(w(), 0, R, x.data(), C, T, ref.data(), R);
  kernels::matmul_t_rows_ref(w(), 0, R, xt.data(), R, T, tref.data(), C);

  // The fast path sums in a different order, so it differs from the reference somewhere;
  // otherwise this test could not tell the two paths apart.
  std::vector<float> fast(static_cast<size_t>(T * R));
  {
    ReferenceKernels mode(false);
    kernels::matmul(ctx(), w(), x.data(), T, fast.data());
  }
  bool differs = false;
  for (size_t i = 0; i < fast.size(); ++i) differs |= bits(fast[i]) != bits(ref[i]);
  if (C >= 16) {  // a handful of terms may well sum identically in either order
    EXPECT_TRUE(differs) << "fast and reference results coincide; the switch test below is not discriminating";
  }

  ReferenceKernels mode(true);
  ASSERT_TRUE(kernels::reference_kernels());
  std::vector<float> y(static_cast<size_t>(T * R)), yr(static_cast<size_t>(T * R)), yt(static_cast<size_t>(T * C));
  kernels::matmul(ctx(), w(), x.data(), T, y.data());
  kernels::matmul_rows(w(), 0, R, x.data(), C, T, yr.data(), R, scratch());
  kernels::matmul_t_rows(w(), 0, R, xt.data(), R, T, yt.data(), C, scratch());
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_EQ(bits(y[i]), bits(ref[i])) << "matmul i=" << i;
    ASSERT_EQ(bits(yr[i]), bits(ref[i])) << "matmul_rows i=" << i;
  }
  for (size_t i = 0; i < yt.size(); ++i) ASSERT_EQ(bits(yt[i]), bits(tref[i])) << "matmul_t_rows i=" << i;
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, KernelsTest,
    ::testing::Combine(
        ::testing::Values(MatrixCase{"f32", io::DType::F32, 200, 300}, MatrixCase{"bf16", io::DType::BF16, 200, 300},
                          MatrixCase{"f16", io::DType::F16, 200, 300},
                          MatrixCase{"fp8_block128", io::DType::F8_E4M3, 200, 300, 128, 128},
                          MatrixCase{"fp8_block16x32", io::DType::F8_E4M3, 200, 300, 16, 32},
                          MatrixCase{"fp8_exact_blocks", io::DType::F8_E4M3, 256, 128, 128, 128},
                          MatrixCase{"fp8_small_odd", io::DType::F8_E4M3, 37, 45, 16, 32},
                          MatrixCase{"f32_one_by_one", io::DType::F32, 1, 1}),
        ::testing::ValuesIn(testutil::supported_isas())),
    [](const ::testing::TestParamInfo<std::tuple<MatrixCase, kernels::Isa>>& info) {
      return std::string(std::get<0>(info.param).label) + "_" + testutil::isa_label(std::get<1>(info.param));
    });

TEST(KernelsErrors, NonFloatDtypeIsRejectedWithItsName) {
  const std::vector<int32_t> data(12, 1);
  kernels::WeightMatrix w;
  w.name = "model.bad.weight";
  w.dtype = io::DType::I32;
  w.data = data.data();
  w.rows = 3;
  w.cols = 4;
  std::vector<float> row(4);
  const std::string msg = testutil::error_of([&] { kernels::decode_row(w, 0, row.data()); });
  EXPECT_CONTAINS(msg, "model.bad.weight");
  EXPECT_CONTAINS(msg, "I32");
  EXPECT_CONTAINS(testutil::error_of([&] { (void)w.at(0, 0); }), "model.bad.weight");
}

// Kernels outside the matrix case table, under every ISA.
class IsaParamTest : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    isa_ = std::make_unique<testutil::IsaScope>(GetParam());
    ASSERT_TRUE(isa_->ok());
  }
  void TearDown() override { isa_.reset(); }
  std::unique_ptr<testutil::IsaScope> isa_;
};
class KernelsDot : public IsaParamTest {};
class KernelsWeightedRows : public IsaParamTest {};
class KernelsLatentScores : public IsaParamTest {};
class KernelsLatentBlock : public IsaParamTest {};
class KernelsGemm : public IsaParamTest {};

// ---- dot -----------------------------------------------------------------------------------

// exp_n: exp_poly_ref's bits on every ISA, vector body and tails, clamped arguments included;
// and within a few ulp of the library's exp.
TEST_P(KernelsDot, ExpNGivesExpPolyRefBits) {
  for (int64_t n : {0, 1, 15, 16, 17, 100, 4096}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = -100.0f + 188.0f * float(i) / float(n > 1 ? n - 1 : 1) + 0.013f * float(i % 7);
    std::vector<float> y = x;
    kernels::exp_n(y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(bits(y[size_t(i)]), bits(kernels::exp_poly_ref(x[size_t(i)]))) << "n=" << n << " x=" << x[size_t(i)];
      if (x[size_t(i)] > -87.0f && x[size_t(i)] < 88.0f) {
        ASSERT_NEAR(y[size_t(i)], std::exp(double(x[size_t(i)])), 1e-6 * std::exp(double(x[size_t(i)])));
      }
    }
  }
  // NaN runs through (a NaN logit must not vanish from a loss), in the body and the tail.
  std::vector<float> nan(33, -1.0f);
  nan[3] = nan[32] = std::numeric_limits<float>::quiet_NaN();
  kernels::exp_n(nan.data(), 33);
  EXPECT_TRUE(std::isnan(nan[3]) && std::isnan(nan[32]));
  EXPECT_TRUE(std::isnan(kernels::exp_poly_ref(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(nan[4], kernels::exp_poly_ref(-1.0f));
}

TEST_P(KernelsDot, MatchesReferenceWithinBound) {
  for (int64_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 7168}) {
    // +1: also an unaligned start.
    const std::vector<float> a = random_vector(n + 1, 100 + n), b = random_vector(n + 1, 200 + n);
    for (int off : {0, 1}) {
      if (off > n) continue;
      const int64_t m = n - off;
      double exact = 0, abs_sum = 0;
      for (int64_t i = 0; i < m; ++i) {
        exact += double(a[size_t(off + i)]) * double(b[size_t(off + i)]);
        abs_sum += std::fabs(double(a[size_t(off + i)]) * double(b[size_t(off + i)]));
      }
      const float fast = kernels::dot(a.data() + off, b.data() + off, m);
      const float ref = kernels::dot_ref(a.data() + off, b.data() + off, m);
      const double tol = gamma_bound(m) * abs_sum + 1e-30;
      EXPECT_LE(std::fabs(fast - exact), tol) << "n=" << m;
      EXPECT_LE(std::fabs(ref - exact), tol) << "n=" << m;
    }
  }
  EXPECT_EQ(kernels::dot(nullptr, nullptr, 0), 0.0f);
  EXPECT_EQ(kernels::dot_ref(nullptr, nullptr, 0), 0.0f);
}

TEST_P(KernelsDot, ExactOnRepresentableSums) {
  std::vector<float> a(37), b(37);
  double want = 0;
  for (int i = 0; i < 37; ++i) {
    a[size_t(i)] = float(i - 18);
    b[size_t(i)] = float(2 * i + 1);
    want += double(a[size_t(i)]) * double(b[size_t(i)]);
  }
  EXPECT_EQ(double(kernels::dot(a.data(), b.data(), 37)), want);
  EXPECT_EQ(double(kernels::dot_ref(a.data(), b.data(), 37)), want);
}

TEST_P(KernelsDot, ReferenceSwitchRoutesDot) {
  const std::vector<float> a = random_vector(1001, 5), b = random_vector(1001, 6);
  ReferenceKernels mode(true);
  EXPECT_EQ(bits(kernels::dot(a.data(), b.data(), 1001)), bits(kernels::dot_ref(a.data(), b.data(), 1001)));
}

// ---- ThreadPool ----------------------------------------------------------------------------

TEST(ThreadPoolTest, Size) {
  EXPECT_EQ(ThreadPool(1).size(), 1);
  EXPECT_EQ(ThreadPool(4).size(), 4);
  EXPECT_GE(ThreadPool(0).size(), 1);  // hardware threads
}

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 9, 100, 1001}) {
      SCOPED_TRACE(testing::Message() << threads << " threads, n=" << n);
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      std::mutex mu;
      std::vector<std::pair<int64_t, int64_t>> chunks;
      std::vector<int> thread_ids;
      pool.parallel_for(n, [&](int tid, int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) seen[size_t(i)]++;
        std::lock_guard<std::mutex> lock(mu);
        chunks.emplace_back(begin, end);
        thread_ids.push_back(tid);
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[size_t(i)].load(), 1) << "index " << i;
      EXPECT_LE(int64_t(chunks.size()), std::min<int64_t>(n, threads));  // n = 0: never called
      for (auto [b, e] : chunks) EXPECT_LT(b, e) << "empty chunk";
      for (int tid : thread_ids) {
        EXPECT_GE(tid, 0);
        EXPECT_LT(tid, threads);
      }
      std::sort(thread_ids.begin(), thread_ids.end());
      EXPECT_EQ(std::adjacent_find(thread_ids.begin(), thread_ids.end()), thread_ids.end()) << "a thread ran twice";
    }
  }
}

TEST(ThreadPoolTest, ExceptionsPropagateToTheCaller) {
  for (int threads : {1, 4}) {
    ThreadPool pool(threads);
    for (int64_t bad : {int64_t(0), int64_t(60), int64_t(99)}) {  // chunk 0 runs on the caller
      SCOPED_TRACE(testing::Message() << threads << " threads, throwing at index " << bad);
      const std::string msg = testutil::error_of([&] {
        pool.parallel_for(100, [&](int, int64_t b, int64_t e) {
          if (b <= bad && bad < e) fail("chunk holding ", bad, " failed");
        });
      });
      EXPECT_EQ(msg, "chunk holding " + std::to_string(bad) + " failed");
    }
    // Every chunk throws: exactly one exception arrives, of the thrown type.
    EXPECT_THROW(pool.parallel_for(100, [](int, int64_t, int64_t) { throw std::out_of_range("all"); }),
                 std::out_of_range);
    // A single-item job runs inline and also propagates.
    EXPECT_THROW(pool.parallel_for(1, [](int, int64_t, int64_t) { throw std::logic_error("one"); }), std::logic_error);
    // The pool still works afterwards.
    std::atomic<int64_t> sum{0};
    pool.parallel_for(1000, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
    EXPECT_EQ(sum.load(), 999 * 1000 / 2);
  }
}

TEST(ThreadPoolTest, ManySmallJobs) {
  ThreadPool pool(4);
  for (int round = 0; round < 500; ++round) {
    std::atomic<int64_t> count{0};
    pool.parallel_for(round % 9, [&](int, int64_t b, int64_t e) { count += e - b; });
    ASSERT_EQ(count.load(), round % 9) << "round " << round;
  }
}


// weighted_rows (attention's value sum) is, bit for bit, the axpy loop it replaces, and
// within the dot-product bound of its scalar twin; odd head counts and column ranges
// exercise every remainder path, and all-zero weight rows are skipped without effect.
TEST_P(KernelsWeightedRows, MatchesAxpyLoopAndScalarTwin) {
  const int64_t H = 7, n = 301, C = 150, c0 = 3, c1 = 141;
  std::vector<float> p = random_vector(H * n, 71);
  for (float& v : p) v = std::fabs(v);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t j = 40; j < 60; ++j) p[size_t(h * n + j)] = 0.0f;  // rows nobody attends to
  const std::vector<float> data = random_vector(n * C, 72);
  std::vector<const float*> rows;
  for (int64_t j = 0; j < n; ++j) rows.push_back(&data[size_t(j * C)]);
  const int64_t W = c1 - c0;
  std::vector<float> fast(size_t(H * W)), ref(size_t(H * W)), loop(size_t(H * W), 0.0f);
  kernels::weighted_rows(p.data(), n, H, rows.data(), n, c0, c1, fast.data(), W);
  kernels::weighted_rows_ref(p.data(), n, H, rows.data(), n, c0, c1, ref.data(), W);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t j = 0; j < n; ++j) kernels::axpy(p[size_t(h * n + j)], rows[size_t(j)] + c0, &loop[size_t(h * W)], W);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = 0; c < W; ++c) {
      const size_t i = size_t(h * W + c);
      double exact = 0, mag = 0;
      for (int64_t j = 0; j < n; ++j) {
        exact += double(p[size_t(h * n + j)]) * double(rows[size_t(j)][c0 + c]);
        mag += std::fabs(double(p[size_t(h * n + j)]) * double(rows[size_t(j)][c0 + c]));
      }
      ASSERT_EQ(bits(fast[i]), bits(loop[i])) << "h=" << h << " c=" << c;
      EXPECT_LE(std::fabs(double(fast[i]) - exact), gamma_bound(n) * mag) << "h=" << h << " c=" << c;
      EXPECT_LE(std::fabs(double(ref[i]) - exact), gamma_bound(n) * mag) << "h=" << h << " c=" << c;
    }
}


// latent_block_bf16 (BF16 absorbed attention over a block of cached rows): every ISA tier
// gives its scalar twin's bits (scores, max, sum, weighted rows), for V3's shape and for one
// whose widths leave remainders (rows not a multiple of 32 wide, columns past the last 16,
// an odd row count); and the normalised result is the exact softmax attention of the BF16
// operands up to the rounding of the probabilities to BF16.
TEST_P(KernelsLatentBlock, MatchesTheTwinAndTheExactAttention) {
  for (const auto& [H, R, rope, nb] : {std::array<int64_t, 4>{16, 512, 64, 256}, std::array<int64_t, 4>{16, 512, 64, 37},
                                       std::array<int64_t, 4>{3, 40, 8, 1}, std::array<int64_t, 4>{5, 40, 8, 21}}) {
    const int64_t dim = R + rope, Dp = (dim + 31) / 32 * 32, nbp = nb + (nb & 1);
    auto bf16_vec = [](int64_t n, uint64_t seed, float scale) {
      const std::vector<float> f = random_vector(n, seed);
      std::vector<uint16_t> b(f.size());
      for (size_t i = 0; i < f.size(); ++i) b[i] = kernels::bf16_round(f[i] * scale);
      return b;
    };
    std::vector<uint16_t> q = bf16_vec(H * Dp, 301, 1.0f), xb = bf16_vec(nbp * Dp, 302, 1.0f);
    for (int64_t r = 0; r < H; ++r) std::fill(q.begin() + r * Dp + dim, q.begin() + (r + 1) * Dp, uint16_t(0));
    for (int64_t j = 0; j < nbp; ++j)
      std::fill(xb.begin() + j * Dp + (j < nb ? dim : 0), xb.begin() + (j + 1) * Dp, uint16_t(0));
    const float scale = 0.12f;
    std::vector<const uint16_t*> x;
    for (int64_t j = 0; j < nbp; ++j) x.push_back(&xb[size_t(j * Dp)]);
    std::vector<float> s(static_cast<size_t>(H * (nb + 1))), s2(s), m(static_cast<size_t>(H)), m2(m), l(m), l2(m);
    std::vector<uint16_t> pb(s.size()), pb2(s.size());
    std::vector<float> acc(static_cast<size_t>(H * R)), acc2(acc);
    kernels::latent_block_bf16(q.data(), H, Dp, R, x.data(), nb, scale, s.data(), pb.data(), m.data(), l.data(),
                               acc.data());
    kernels::latent_block_bf16_ref(q.data(), H, Dp, R, x.data(), nb, scale, s2.data(), pb2.data(), m2.data(),
                                   l2.data(), acc2.data());
    for (int64_t h = 0; h < H; ++h) {
      ASSERT_EQ(bits(m[size_t(h)]), bits(m2[size_t(h)])) << "H=" << H << " h=" << h;
      ASSERT_EQ(bits(l[size_t(h)]), bits(l2[size_t(h)])) << "H=" << H << " h=" << h;
      for (int64_t c = 0; c < R; ++c)
        ASSERT_EQ(bits(acc[size_t(h * R + c)]), bits(acc2[size_t(h * R + c)])) << "H=" << H << " h=" << h << " c=" << c;
      // Against softmax attention in double over the same BF16 operands.
      std::vector<double> sc(static_cast<size_t>(nb));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < nb; ++j) {
        double d = 0;
        for (int64_t i = 0; i < dim; ++i)
          d += double(kernels::bf16_value(q[size_t(h * Dp + i)])) * kernels::bf16_value(xb[size_t(j * Dp + i)]);
        sc[size_t(j)] = d * scale;
        mx = std::max(mx, sc[size_t(j)]);
      }
      for (double& v : sc) sum += (v = std::exp(v - mx));
      EXPECT_NEAR(m[size_t(h)], mx, 1e-4 * (1 + std::fabs(mx)));
      EXPECT_NEAR(l[size_t(h)], sum, 1e-5 * sum);
      for (int64_t c = 0; c < R; ++c) {
        double o = 0, mag = 0;
        for (int64_t j = 0; j < nb; ++j) {
          o += sc[size_t(j)] * kernels::bf16_value(xb[size_t(j * Dp + c)]);
          mag += sc[size_t(j)] * std::fabs(kernels::bf16_value(xb[size_t(j * Dp + c)]));
        }
        EXPECT_NEAR(acc[size_t(h * R + c)] / l[size_t(h)], o / sum, 0.01 * mag / sum + 1e-6) << "h=" << h << " c=" << c;
      }
    }
  }
}

TEST(KernelsExpPoly, CloseToExpAndFlooredAtMinus87) {
  double worst = 0;
  for (float x = -87.0f; x <= 0.0f; x += 0.0137f) {
    const double e = std::exp(double(x));
    worst = std::max(worst, std::fabs(kernels::exp_poly_ref(x) - e) / e);
  }
  EXPECT_LT(worst, 5e-7);
  EXPECT_EQ(kernels::exp_poly_ref(0.0f), 1.0f);
  EXPECT_EQ(kernels::exp_poly_ref(-1000.0f), kernels::exp_poly_ref(-87.0f));
  EXPECT_EQ(kernels::exp_poly_ref(-std::numeric_limits<float>::infinity()), kernels::exp_poly_ref(-87.0f));
}


// latent_scores (attention scores over one cached latent row) against exact products, with
// head counts and widths that leave every remainder path some work.
TEST_P(KernelsLatentScores, MatchExactScoresWithinBound) {
  for (const auto& [H, R, rope] : {std::array<int64_t, 3>{16, 512, 64}, std::array<int64_t, 3>{11, 37, 13}}) {
    const std::vector<float> qa = random_vector(H * R, 81), qr = random_vector(H * rope, 82);
    const std::vector<float> row = random_vector(R + rope, 83);
    std::vector<float> fast(size_t(H * 3), -1.0f), ref(size_t(H * 3), -1.0f);
    kernels::latent_scores(qa.data(), R, qr.data(), rope, H, R, rope, row.data(), 0.25f, fast.data(), 3);
    kernels::latent_scores_ref(qa.data(), R, qr.data(), rope, H, R, rope, row.data(), 0.25f, ref.data(), 3);
    for (int64_t h = 0; h < H; ++h) {
      double exact = 0, mag = 0;
      for (int64_t k = 0; k < R; ++k) {
        exact += double(qa[size_t(h * R + k)]) * row[size_t(k)];
        mag += std::fabs(double(qa[size_t(h * R + k)]) * row[size_t(k)]);
      }
      for (int64_t k = 0; k < rope; ++k) {
        exact += double(qr[size_t(h * rope + k)]) * row[size_t(R + k)];
        mag += std::fabs(double(qr[size_t(h * rope + k)]) * row[size_t(R + k)]);
      }
      const double bound = (gamma_bound(R + rope + 2) * mag + 1e-30) * 0.25;
      EXPECT_NEAR(fast[size_t(h * 3)], exact * 0.25, bound) << "H=" << H << " h=" << h;
      EXPECT_NEAR(ref[size_t(h * 3)], exact * 0.25, bound) << "H=" << H << " h=" << h;
      EXPECT_EQ(fast[size_t(h * 3 + 1)], -1.0f);  // the stride is respected
    }
  }
}


// The training GEMM against its plain-loop twin and exact (double) products, in every layout
// (A and B each stored plain or transposed) and on shapes with partial register tiles.
TEST_P(KernelsGemm, MatchesTwinAndExactProductsInEveryLayout) {
  kernels::Context ctx(testutil::pool());
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, std::tuple{7, 37, 300}, std::tuple{50, 3, 17}, std::tuple{13, 70, 5},
                         std::tuple{64, 130, 600}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        SCOPED_TRACE(testing::Message() << M << "x" << N << "x" << K << " ta " << ta << " tb " << tb);
        Rng rng(uint64_t(M * 1000 + N * 10 + K));
        std::vector<float> A(size_t(M * K)), B(size_t(K * N)), C(size_t(M * N), 1.0f), Cr(C);
        for (float& v : A) v = rng.symmetric(1);
        for (float& v : B) v = rng.symmetric(1);
        kernels::gemm<float>(ctx, ta, tb, M, N, K, A.data(), B.data(), C.data(), true);
        kernels::gemm_ref<float>(ta, tb, M, N, K, A.data(), B.data(), Cr.data(), true);
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < N; ++j) {
            double want = 1.0, mag = 1.0;
            for (int k = 0; k < K; ++k) {
              const double term = double(ta ? A[size_t(k * M + i)] : A[size_t(i * K + k)]) *
                                  double(tb ? B[size_t(j * K + k)] : B[size_t(k * N + j)]);
              want += term;
              mag += std::fabs(term);
            }
            const double tol = gamma_bound(K + 1) * mag;
            ASSERT_LE(std::fabs(C[size_t(i * N + j)] - want), tol) << "fast i=" << i << " j=" << j;
            ASSERT_LE(std::fabs(Cr[size_t(i * N + j)] - want), tol) << "twin i=" << i << " j=" << j;
          }
        // Overwriting (accumulate false) equals accumulating onto zeros.
        std::vector<float> Z(size_t(M * N), 0.0f), O(size_t(M * N), 7.0f);
        kernels::gemm<float>(ctx, ta, tb, M, N, K, A.data(), B.data(), Z.data(), true);
        kernels::gemm<float>(ctx, ta, tb, M, N, K, A.data(), B.data(), O.data(), false);
        for (size_t i = 0; i < Z.size(); ++i) ASSERT_EQ(bits(Z[i]), bits(O[i])) << i;
      }
}

INSTANTIATE_TEST_SUITE_P(Isas, KernelsDot, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Isas, KernelsWeightedRows, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Isas, KernelsLatentBlock, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Isas, KernelsLatentScores, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Isas, KernelsGemm, ::testing::ValuesIn(testutil::supported_isas()),
                         [](const auto& info) { return testutil::isa_label(info.param); });

}  // namespace
}  // namespace dsv3
