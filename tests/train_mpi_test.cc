// Data parallelism: `mpirun -np 2 dsv3 train` follows the same loss curve as one process at
// the same global batch (each rank computes half the sequences; gradients are summed).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "train/data_parallel.h"
#include "train_test_util.h"

namespace dsv3 {
namespace {

std::vector<double> losses(const std::string& metrics) {
  std::ifstream in(metrics);
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.at("kind") == "train") out.push_back(j.at("loss").get<double>());
  }
  return out;
}

TEST(TrainMpi, TwoRanksFollowTheSingleProcessLossCurve) {
  if (!train::DataParallel::available()) GTEST_SKIP() << "built without MPI (libopenmpi-dev)";
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun not found (openmpi-bin)";
  testutil::TempDir dir("mpi");
  testutil::write_byte_tokenizer(dir.str());
  std::ofstream(dir / "corpus.txt") << testutil::corpus_text(4, 600);
  const nlohmann::json run = {{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}}},
                              {"data", {{"tokenizer", "."}, {"train_files", {"corpus.txt"}}, {"eval_sequences", 0}}},
                              {"seq_len", 16},
                              {"batch_size", 2},
                              {"grad_accum", 2},
                              {"steps", 4},
                              {"optimizer", {{"lr", 0.01}}},
                              {"mtp", {{"weight", 0.3}}},
                              {"balance", {{"gamma", 0.01}}},
                              {"export_dtype", "none"},
                              {"out_dir", "one"}};
  std::ofstream(dir / "run.json") << run.dump(2);

  const auto one = testutil::run_dsv3("--threads 1 train -q --config " + (dir / "run.json"));
  ASSERT_EQ(one.code, 0) << one.out;
  // Root may run mpirun in CI containers; the sanitizer build's leak checker would flag
  // OpenMPI's own allocations, which are not ours.
  const std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 "
                          "mpirun -np 2 --oversubscribe " + std::string(DSV3_BINARY) + " --threads 1 train -q --config " +
                          (dir / "run.json") + " --out " + (dir / "two") + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_EQ(status, 0) << out;
  EXPECT_CONTAINS(out, "trained steps 1-4 of 4");
  EXPECT_EQ(out.find("trained steps", out.find("trained steps") + 1), std::string::npos) << "only rank 0 reports";

  const std::vector<double> a = losses(dir / "one/metrics.jsonl"), b = losses(dir / "two/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  // Same weights, same sequences: step 1 differs only in how the ranks' double loss sums are
  // added up ((s0 + s1) + (s2 + s3) against s0 + s1 + s2 + s3).
  EXPECT_NEAR(a[0], b[0], 1e-13 * std::abs(a[0]));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * std::abs(a[i])) << "step " << i + 1;
  EXPECT_TRUE(std::filesystem::exists(dir / "two/state/state.json"));
}

}  // namespace
}  // namespace dsv3
