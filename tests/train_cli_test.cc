// `dsv3 train` as a user runs it: a short debug-model run with its progress lines, metrics
// log, plot, state and summary; resuming it; and the errors a bad invocation gets.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "train_test_util.h"

namespace dsv3 {
namespace {

using testutil::run_dsv3;

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testutil::write_byte_tokenizer(dir_.str());
    std::ofstream(dir_ / "corpus.txt") << testutil::corpus_text(4, 600);
  }
  std::string write_config(const nlohmann::json& extra) {
    nlohmann::json j = {{"model", {{"type", "debug_moe_bigram"}, {"dim", 8}}},
                        {"data", {{"tokenizer", "."}, {"train_files", {"corpus.txt"}}, {"eval_sequences", 2}}},
                        {"seq_len", 32},
                        {"batch_size", 2},
                        {"steps", 6},
                        {"optimizer", {{"lr", 0.03}}},
                        {"schedule", {{"type", "cosine"}, {"warmup_steps", 1}}},
                        {"eval_interval", 3},
                        {"out_dir", "run"}};
    if (!extra.is_null()) j.merge_patch(extra);
    std::ofstream(dir_ / "run.json") << j.dump(2);
    return dir_ / "run.json";
  }
  testutil::TempDir dir_{"traincli"};
};

TEST_F(TrainCli, SmokeRunThenResume) {
  const auto r = run_dsv3("train --config " + write_config({}));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "step 6/6 [########################] loss ");
  EXPECT_CONTAINS(r.out, "tok/s | ETA");
  EXPECT_CONTAINS(r.out, "step 3: eval loss ");
  EXPECT_CONTAINS(r.out, "trained steps 1-6 of 6 in ");
  for (const char* f : {"run/metrics.jsonl", "run/loss.svg", "run/run.json", "run/state/state.json", "run/state/state.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(dir_ / f)) << f;
  std::ifstream in(dir_ / "run/metrics.jsonl");
  std::string line;
  std::getline(in, line);
  const nlohmann::json first = nlohmann::json::parse(line);
  EXPECT_EQ(first.at("step"), 1);
  for (const char* k : {"lr", "loss", "main_ce", "mtp_ce", "balance", "grad_norm", "tokens_per_s", "maxvio", "gamma"})
    EXPECT_TRUE(first.contains(k)) << k;
  EXPECT_EQ(first.at("tokens"), 64);

  const auto more = run_dsv3("train --resume " + (dir_ / "run") + " --steps 8 -q");
  ASSERT_EQ(more.code, 0) << more.out;
  EXPECT_CONTAINS(more.out, "trained steps 7-8 of 8");
  EXPECT_EQ(more.out.find("step 8/8"), std::string::npos);  // -q: no progress lines

  const auto again = run_dsv3("train --config " + (dir_ / "run.json"));  // would overwrite the run
  EXPECT_EQ(again.code, 1);
  EXPECT_CONTAINS(again.out, "already holds a training state: continue it with --resume");
}

// The debug model splits its vocabulary loops over the thread pool in fixed chunks; the
// losses must not depend on how many threads there are.
TEST_F(TrainCli, LossesDoNotDependOnTheThreadCount) {
  testutil::write_byte_tokenizer(dir_.str(), 9000);  // 3 chunks of 4096
  const std::string cfg = write_config({{"steps", 2}, {"seq_len", 8}, {"batch_size", 1}, {"data", {{"eval_sequences", 1}}}});
  auto losses = [&](int threads) {
    std::string out_dir = dir_ / "threads";  // appended, not prefixed: GCC 12 -Wrestrict false positive
    out_dir += std::to_string(threads);
    const auto r = run_dsv3("--threads " + std::to_string(threads) + " train -q --config " + cfg + " --out " + out_dir);
    EXPECT_EQ(r.code, 0) << r.out;
    std::ifstream in(out_dir + "/metrics.jsonl");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      out.push_back(j.at("kind") == "train" ? j.at("loss").dump() + " " + j.at("grad_norm").dump() : j.at("eval_loss").dump());
    }
    return out;
  };
  const std::vector<std::string> one = losses(1);
  EXPECT_EQ(one.size(), 3u);
  EXPECT_EQ(losses(3), one);
}

// The real DeepSeek-V3 core through the loop: MLA, MoE with bias balancing, MTP; the FP8
// export loads and generates.
TEST_F(TrainCli, DeepSeekV3ModelTrainsExportsAndGenerates) {
  const std::string cfg = write_config({{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}, {"dim", nullptr}}},
                                        {"steps", 3},
                                        {"seq_len", 16},
                                        {"eval_interval", 3},
                                        {"export_dtype", "fp8"},
                                        {"balance", {{"gamma", 0.01}}}});
  const auto r = run_dsv3("train --config " + cfg);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "trained steps 1-3 of 3");
  std::ifstream in(dir_ / "run/metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_GE(lines.size(), 3u);
  EXPECT_GT(lines[0].at("mtp_ce").get<double>(), 0.0);  // the MTP module is trained
  EXPECT_EQ(lines[0].at("maxvio").size(), 3u);          // tiny: two MoE layers and the MTP block
  const std::string model = dir_ / "run/hf";
  ASSERT_TRUE(std::filesystem::exists(model + "/config.json")) << r.out;
  const auto inspect = run_dsv3("inspect --model " + model);
  ASSERT_EQ(inspect.code, 0) << inspect.out;
  EXPECT_CONTAINS(inspect.out, "unused       none");
  const auto gen = run_dsv3("generate --model " + model + " --prompt ab --max-tokens 4 --temperature 0");
  EXPECT_EQ(gen.code, 0) << gen.out;
}

TEST_F(TrainCli, ErrorsAreClear) {
  auto r = run_dsv3("train");
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "dsv3 train needs --config RUN.json");
  r = run_dsv3("train --config " + write_config({{"optimizer", {{"learning_rate", 0.1}}}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "unknown key 'optimizer.learning_rate'");
  r = run_dsv3("train --config " + write_config({{"model", {{"type", "deepseek_v3"}, {"preset", "no-such"}, {"dim", nullptr}}}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "no-such");
  r = run_dsv3("train --config " + write_config({{"seq_len", 5000}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "fewer than one window");
  r = run_dsv3("train --resume " + (dir_ / "nothing"));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "holds no training state");
}

}  // namespace
}  // namespace dsv3

namespace dsv3 {
namespace {

// A tiny DeepSeek-V3 run in fp8 with --profile: the phase table, MFU in every train line and
// the summary, the eval line's accuracies; then `dsv3 plot` of its metrics.
TEST_F(TrainCli, Fp8RunWithProfileReportsMfuAndPlots) {
  const auto r = run_dsv3("train -q --profile --config " +
                          write_config({{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}, {"dim", nullptr}}},
                                        {"precision", "fp8"},
                                        {"seq_len", 16},
                                        {"steps", 3},
                                        {"export_dtype", "none"}}));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* phase : {"GEMM Fprop", "GEMM Dgrad", "GEMM Wgrad", "FP8/BF16 operands", "attention core", "optimizer", "total"})
    EXPECT_CONTAINS(r.out, phase);
  EXPECT_CONTAINS(r.out, "GFLOP/s");
  EXPECT_CONTAINS(r.out, "MFU ");
  std::ifstream in(dir_ / "run/metrics.jsonl");
  std::string line;
  int train_lines = 0, eval_lines = 0;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.at("kind") == "train") {
      ++train_lines;
      ASSERT_TRUE(j.contains("mfu")) << line;
      EXPECT_GT(j.at("mfu").get<double>(), 0.0);
      EXPECT_LT(j.at("mfu").get<double>(), 1.0);
    } else {
      ++eval_lines;
      for (const char* k : {"eval_accuracy", "eval_mtp_ce", "eval_mtp_accuracy"}) EXPECT_TRUE(j.contains(k)) << k;
    }
  }
  EXPECT_EQ(train_lines, 3);
  EXPECT_EQ(eval_lines, 1);  // step 3: the interval and the last step at once
  const auto p = run_dsv3("plot --out " + (dir_ / "p.svg") + " --field maxvio " + (dir_ / "run") + "=fp8 " +
                          (dir_ / "run/metrics.jsonl") + "=again");
  ASSERT_EQ(p.code, 0) << p.out;
  std::ifstream svg(dir_ / "p.svg");
  const std::string doc((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_CONTAINS(doc, "<svg");
  EXPECT_CONTAINS(doc, ">fp8<");
  EXPECT_CONTAINS(doc, ">again<");
  const auto bad = run_dsv3("plot --out " + (dir_ / "q.svg") + " --field nope " + (dir_ / "run"));
  EXPECT_NE(bad.code, 0);
  EXPECT_CONTAINS(bad.out, "has no metric 'nope' (it has: ");
}

}  // namespace
}  // namespace dsv3
