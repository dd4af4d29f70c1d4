// Logit distillation in `dsv3 train` (run config `distill`): a student learns a teacher's
// distribution, run on the fly by the inference engine (train/teacher.h); the teacher must
// speak the student's tokenizer. The loss and its gradient are checked against PyTorch by
// scripts/grad_cross_check.py; here the loss function against finite differences and the run.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/rng.h"
#include "kernels/context.h"
#include "test_util.h"
#include "threading/pool.h"
#include "train/loss.h"
#include "train_test_util.h"

namespace dsv3 {
namespace {

// The distillation loss's gradient is its finite difference, with and without a mask, and
// weight 0 is plain cross-entropy.
TEST(TrainDistill, LossGradientIsItsFiniteDifference) {
  ThreadPool pool(2);
  kernels::Context ctx(pool);
  const int64_t N = 3, V = 7;
  Rng rng(5);
  std::vector<double> z(N * V);
  std::vector<float> t(N * V);
  for (auto& v : z) v = rng.uniform() * 4 - 2;
  for (auto& v : t) v = float(rng.uniform() * 4 - 2);
  const std::vector<int32_t> targets = {2, 6, 0};
  const std::vector<uint8_t> mask = {1, 0, 1};
  for (const uint8_t* m : {static_cast<const uint8_t*>(nullptr), mask.data()}) {
    for (double w : {0.0, 0.4, 1.0}) {
      std::vector<double> d(N * V);
      const train::DistillTerms base =
          train::distill_cross_entropy<double>(ctx, z.data(), t.data(), targets.data(), N, V, w, 1.7, 1.0, d.data(), m);
      if (w == 0.0) {
        EXPECT_NEAR(base.loss, train::cross_entropy<double>(ctx, z.data(), targets.data(), N, V, 1.0, nullptr, m), 1e-12);
      }
      for (int64_t i = 0; i < N * V; ++i) {
        std::vector<double> zp = z, zm = z;
        zp[size_t(i)] += 1e-6;
        zm[size_t(i)] -= 1e-6;
        const double lp = train::distill_cross_entropy<double>(ctx, zp.data(), t.data(), targets.data(), N, V, w, 1.7, 1.0, nullptr, m).loss;
        const double lm = train::distill_cross_entropy<double>(ctx, zm.data(), t.data(), targets.data(), N, V, w, 1.7, 1.0, nullptr, m).loss;
        EXPECT_NEAR(d[size_t(i)], (lp - lm) / 2e-6, 1e-6) << "w " << w << " element " << i;
      }
    }
  }
  // A student equal to its teacher has no KL.
  std::vector<double> same(t.begin(), t.end());
  EXPECT_NEAR(train::distill_cross_entropy<double>(ctx, same.data(), t.data(), targets.data(), N, V, 1.0, 2.0, 1.0, nullptr).kl,
              0.0, 1e-12);
}

class TrainDistillRun : public ::testing::Test {
 protected:
  void SetUp() override {
    testutil::write_byte_tokenizer(dir_.str());
    std::ofstream(dir_ / "corpus.txt") << testutil::corpus_text(9, 4000);
  }
  std::string config(const std::string& name, const nlohmann::json& patch) {
    nlohmann::json j = {{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}}},
                        {"data", {{"tokenizer", "."}, {"train_files", {"corpus.txt"}}, {"eval_sequences", 0}}},
                        {"seq_len", 32}, {"batch_size", 4}, {"steps", 40},
                        {"optimizer", {{"lr", 0.01}}}, {"export_dtype", "f32"}, {"out_dir", "teacher"}};
    if (!patch.is_null()) j.merge_patch(patch);
    std::ofstream(dir_ / name) << j.dump(2);
    return dir_ / name;
  }
  testutil::TempDir dir_{"distill"};
};

std::vector<double> logged(const std::string& metrics, const char* key) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains(key)) out.push_back(j[key]);
  }
  return out;
}

TEST_F(TrainDistillRun, StudentApproachesItsTeacher) {
  const auto teacher = testutil::run_dsv3("train -q --config " + config("teacher.json", nullptr));
  ASSERT_EQ(teacher.code, 0) << teacher.out;
  // Soft targets only: the student's loss is its KL to the teacher, which falls.
  const auto student = testutil::run_dsv3(
      "train -q --config " +
      config("student.json", {{"seed", 2}, {"steps", 25}, {"distill", {{"teacher", "teacher/hf"}, {"weight", 1.0}, {"temperature", 1.0}}},
                              {"mtp", {{"weight", 0.0}, {"later_weight", 0.0}}}, {"balance", {{"alpha", 0.0}}},
                              {"export_dtype", "none"}, {"out_dir", "student"}}));
  ASSERT_EQ(student.code, 0) << student.out;
  const std::vector<double> kd = logged(dir_ / "student/metrics.jsonl", "kd");
  ASSERT_EQ(kd.size(), 25u);
  EXPECT_LT(kd.back(), 0.5 * kd.front()) << kd.front() << " -> " << kd.back();
  const std::vector<double> loss = logged(dir_ / "student/metrics.jsonl", "loss");
  EXPECT_NEAR(loss.back(), kd.back(), 1e-6);  // weight 1, T 1, no MTP or balance term: the loss is the KL
  // A run without a teacher logs no KL.
  EXPECT_TRUE(logged(dir_ / "teacher/metrics.jsonl", "kd").empty());
}

TEST_F(TrainDistillRun, TeacherMustShareTheTokenizer) {
  const auto teacher = testutil::run_dsv3("train -q --config " + config("teacher.json", {{"steps", 1}}));
  ASSERT_EQ(teacher.code, 0) << teacher.out;
  // Same vocabulary size, two tokens swapped.
  auto j = nlohmann::json::parse(std::ifstream(dir_ / "teacher/hf/tokenizer.json"));
  j["model"]["vocab"]["a"] = 98;
  j["model"]["vocab"]["b"] = 97;
  std::ofstream(dir_ / "teacher/hf/tokenizer.json") << j.dump();
  const auto r = testutil::run_dsv3(
      "train -q --config " + config("student.json", {{"steps", 1}, {"distill", {{"teacher", "teacher/hf"}}}, {"out_dir", "s"}}));
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.out, "token 97 differs from the student's tokenizer");
  const auto missing = testutil::run_dsv3(
      "train -q --config " + config("s2.json", {{"steps", 1}, {"distill", {{"teacher", "nowhere"}}}, {"out_dir", "s2"}}));
  EXPECT_NE(missing.code, 0);
  EXPECT_CONTAINS(missing.out, "nowhere");
}

}  // namespace
}  // namespace dsv3
