// The trainer's fp32 loss and gradients against frozen float64 PyTorch autograd results
// (scripts/grad_reference.py, reduced and stored by scripts/make_grad_goldens.py) on
// checkpoints rebuilt here bit-exactly by the test-model generator: q-LoRA with MTP and
// balance loss (F32), plain q_proj (BF16), and FP8 (gradients w.r.t. dequantised weights).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/model.h"
#include "model/testgen.h"
#include "test_util.h"
#include "train/loss.h"
#include "train/model_grad.h"

namespace dsv3::train {
namespace {

namespace fs = std::filesystem;

constexpr double kGradTol = 1e-4;  // relative L2 error per tensor (issue 6)
constexpr double kLossTol = 1e-5;  // relative

template <class T>
std::vector<T> read(const io::SafetensorsFile& f, const std::string& name) {
  const io::TensorInfo* t = f.find(name);
  if (!t) ADD_FAILURE() << f.path() << " has no tensor " << name;
  if (!t) return {};
  std::vector<T> v(t->numel());
  std::memcpy(v.data(), f.data(*t), v.size() * sizeof(T));
  return v;
}

// ||got - want|| / ||want||; both must vanish together when the reference is zero.
double rel_err(const std::vector<double>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - double(want[i])) * (got[i] - double(want[i]));
    den += double(want[i]) * double(want[i]);
  }
  if (den == 0) return num == 0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

class TrainGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGolden, LossAndEveryGradientMatchPyTorch) {
  std::ifstream in(fs::path(DSV3_SOURCE_DIR) / "tests/golden/grad_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(in).at("cases");
  nlohmann::json c;
  for (const auto& j : cases)
    if (j.at("name") == GetParam()) c = j;
  ASSERT_FALSE(c.is_null());
  testutil::TempDir dir("grad_golden");
  model::TestModelOptions o;
  o.preset = c.at("preset");
  o.dtype = c.at("dtype");
  o.seed = c.at("seed");
  o.out = dir / "model";
  model::make_test_model(o);

  const io::SafetensorsFile g =
      io::SafetensorsFile::open((fs::path(DSV3_SOURCE_DIR) / "tests/golden" / (GetParam() + ".safetensors")).string());
  const std::vector<int32_t> tokens = read<int32_t>(g, "tokens");
  TrainModel m = TrainModel::from_checkpoint(o.out, testutil::pool());
  const LossWeights opts{c.at("mtp_weight").get<double>(), c.at("balance_alpha").get<double>()};
  const LossTerms s = m.loss_and_grad(tokens.data(), int64_t(tokens.size()), opts, 1.0f);
  for (auto [name, got] : {std::pair{"loss", s.loss}, std::pair{"main_ce", s.main_ce},
                           std::pair{"mtp_ce", s.mtp_ce}, std::pair{"balance", s.balance}}) {
    const double want = read<float>(g, name).at(0);
    EXPECT_LE(std::fabs(got - want), kLossTol * std::max(std::fabs(want), 1e-3)) << name << " want " << want;
  }

  double worst = 0;
  std::string worst_name;
  for (const ParamView& p : m.params()) {
    const int64_t rows = p.shape->size() == 2 ? p.shape->at(0) : 1, cols = p.shape->back();
    std::vector<double> norms(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t j = 0; j < cols; ++j) ss += double(p.grad[size_t(r * cols + j)]) * p.grad[size_t(r * cols + j)];
      norms[size_t(r)] = std::sqrt(ss);
    }
    const std::vector<float> want_norms = read<float>(g, *p.name + ".row_norms");
    ASSERT_EQ(want_norms.size(), norms.size()) << *p.name;
    const double e1 = rel_err(norms, want_norms);
    const std::vector<int32_t> idx = read<int32_t>(g, *p.name + ".row_index");
    const std::vector<float> want_rows = read<float>(g, *p.name + ".rows");
    ASSERT_EQ(want_rows.size(), idx.size() * size_t(cols)) << *p.name;
    std::vector<double> got_rows;
    for (int32_t r : idx)
      for (int64_t j = 0; j < cols; ++j) got_rows.push_back(p.grad[size_t(r * cols + j)]);
    const double e2 = rel_err(got_rows, want_rows);
    EXPECT_LE(e1, kGradTol) << *p.name << ": row norms";
    EXPECT_LE(e2, kGradTol) << *p.name << ": full rows";
    if (std::max(e1, e2) > worst) worst = std::max(e1, e2), worst_name = *p.name;
  }
  std::printf("[%s] max relative gradient error %.3g (%s), loss %.6f\n", GetParam().c_str(), worst,
              worst_name.c_str(), s.loss);
}

// The trainer's forward pass is the inference engine's: the CE of the engine's logits (and
// MTP logits) equals the trainer's loss terms on the same FP8 checkpoint.
TEST(TrainForward, MatchesTheInferenceEngine) {
  testutil::TempDir dir("train_fwd");
  model::TestModelOptions o;
  o.preset = "tiny";
  o.dtype = "fp8";
  o.seed = 31;
  o.out = dir / "model";
  model::make_test_model(o);
  const std::vector<int32_t> toks = {0, 17, 345, 999, 3, 45, 7, 600, 2};
  const int64_t T = int64_t(toks.size());
  TrainModel m = TrainModel::from_checkpoint(o.out, testutil::pool());
  const LossTerms s = m.loss_only(toks.data(), T, LossWeights{0.5, 0.0});

  const model::Model engine = model::Model::load(o.out);
  const int64_t V = engine.config().vocab_size, D = engine.config().hidden_size;
  std::vector<float> logits(size_t(T * V)), normed(size_t(T * D)), mtp(size_t((T - 1) * V));
  model::KvCache cache = engine.new_cache(T), mcache = engine.new_mtp_cache(T - 1);
  model::Workspace ws(testutil::pool());
  model::ForwardOptions fo;
  fo.normed = normed.data();
  engine.forward(ws, toks.data(), T, cache, logits.data(), fo);
  engine.forward_mtp(ws, normed.data(), toks.data() + 1, T - 1, mcache, mtp.data());
  const double main_ce = cross_entropy<float>(ws.kernels, logits.data(), toks.data() + 1, T - 1, V, 1.0, nullptr);
  const double mtp_ce = cross_entropy<float>(ws.kernels, mtp.data(), toks.data() + 2, T - 2, V, 1.0, nullptr);
  EXPECT_NEAR(s.main_ce, main_ce, 1e-5 * main_ce);
  EXPECT_NEAR(s.mtp_ce, mtp_ce, 1e-5 * mtp_ce);
  EXPECT_NEAR(s.loss, main_ce + 0.5 * mtp_ce, 1e-5 * s.loss);
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainGolden,
                         ::testing::Values("grad-tiny-f32", "grad-tiny-noq-bf16", "grad-tiny-fp8"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace dsv3::train
