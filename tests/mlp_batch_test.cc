// run_mlps (src/model/mlp_batch.h): several SwiGLU MLPs over their own tokens in two pool
// jobs give, bit for bit, what each MLP computes alone with whole-matrix products.
#include "model/mlp_batch.h"

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/matmul.h"
#include "matrix_util.h"
#include "model/ops.h"
#include "test_util.h"

namespace dsv3 {
namespace {

struct TestMlp {
  TestMatrix gate, up, down;
  model::MlpWeights w;
};

TestMlp make_mlp(io::DType dt, int64_t hidden, int64_t inter, uint64_t seed) {
  TestMlp m;
  m.gate = make_matrix(MatrixCase{"gate", dt, inter, hidden}, seed);
  m.up = make_matrix(MatrixCase{"up", dt, inter, hidden}, seed + 1);
  m.down = make_matrix(MatrixCase{"down", dt, hidden, inter}, seed + 2);
  m.w = model::MlpWeights{m.gate.w, m.up.w, m.down.w};
  return m;
}

// The MLP one product at a time.
std::vector<float> alone(const model::MlpWeights& w, const float* x, int64_t n) {
  const int64_t I = w.gate.rows, D = w.down.rows;
  std::vector<float> g(size_t(n * I)), u(size_t(n * I)), y(size_t(n * D));
  kernels::Context ctx(testutil::pool());
  kernels::matmul(ctx, w.gate, x, n, g.data());
  kernels::matmul(ctx, w.up, x, n, u.data());
  for (size_t i = 0; i < g.size(); ++i) g[i] = model::ops::silu(g[i]) * u[i];
  kernels::matmul(ctx, w.down, g.data(), n, y.data());
  return y;
}

class MlpBatchTest : public ::testing::TestWithParam<io::DType> {};

TEST_P(MlpBatchTest, MatchesEachMlpAlone) {
  const int64_t D = 160;
  // Uneven widths and token counts: one token (decode), a few, and a prefill-sized batch.
  std::vector<TestMlp> mlps;
  mlps.push_back(make_mlp(GetParam(), D, 200, 11));
  mlps.push_back(make_mlp(GetParam(), D, 72, 21));
  mlps.push_back(make_mlp(GetParam(), D, 264, 31));
  const std::vector<int64_t> tokens = {1, 5, 40};
  std::vector<std::vector<float>> xs, outs;
  std::vector<model::MlpTask> tasks;
  for (size_t i = 0; i < mlps.size(); ++i) {
    xs.push_back(random_vector(tokens[i] * D, 100 + i));
    outs.emplace_back(size_t(tokens[i] * D), -1.0f);
  }
  for (size_t i = 0; i < mlps.size(); ++i) tasks.push_back(model::MlpTask{&mlps[i].w, xs[i].data(), tokens[i], outs[i].data()});
  model::Workspace ws(testutil::pool());
  model::run_mlps(ws, tasks);
  for (size_t i = 0; i < mlps.size(); ++i) {
    const std::vector<float> want = alone(mlps[i].w, xs[i].data(), tokens[i]);
    ASSERT_EQ(std::memcmp(want.data(), outs[i].data(), want.size() * 4), 0) << "MLP " << i;
  }
}

TEST_P(MlpBatchTest, MismatchedWeightsAreAnError) {
  TestMlp a = make_mlp(GetParam(), 64, 48, 1);
  TestMlp b = make_mlp(GetParam(), 64, 32, 2);
  const model::MlpWeights bad{a.gate.w, b.up.w, a.down.w};
  const std::vector<float> x = random_vector(64, 3);
  std::vector<float> y(64);
  model::Workspace ws(testutil::pool());
  EXPECT_THROW(model::run_mlps(ws, {model::MlpTask{&bad, x.data(), 1, y.data()}}), std::exception);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MlpBatchTest, ::testing::Values(io::DType::BF16, io::DType::F8_E4M3, io::DType::F32),
                         [](const ::testing::TestParamInfo<io::DType>& info) { return std::string(io::dtype_name(info.param)); });

}  // namespace
}  // namespace dsv3
