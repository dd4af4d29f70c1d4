// The forward pass's phase profile (`dsv3 bench --profile`): every phase of a real model is
// charged, the phases add up to the time and weight bytes of the whole pass, and profiling
// changes no result.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <vector>

#include "kernels/matmul.h"
#include "model/model.h"
#include "model/profile.h"
#include "model/testgen.h"
#include "test_util.h"

namespace dsv3 {
namespace {

TEST(Profile, PhasesAddUpToTheWholePass) {
  testutil::TempDir dir("profile");
  model::make_test_model({"tiny", "fp8", 5, 1, dir.path().string(), false});
  const model::Model m = model::Model::load(dir.path().string());
  const int64_t V = m.config().vocab_size;
  const std::vector<int32_t> toks = {0, 5, 900, 17, 3, 250, 999, 64};
  const int64_t T = int64_t(toks.size());

  model::Workspace ws(testutil::pool());
  model::KvCache plain_cache = m.new_cache(T);
  std::vector<float> plain(size_t(T * V)), profiled(plain.size());
  m.forward(ws, toks.data(), T, plain_cache, plain.data());

  model::Profile prof;
  ws.profile = &prof;
  model::KvCache cache = m.new_cache(T);
  const uint64_t b0 = kernels::weight_bytes_read();
  const auto t0 = std::chrono::steady_clock::now();
  prof.start();
  m.forward(ws, toks.data(), T, cache, profiled.data());
  prof.stop();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t bytes = kernels::weight_bytes_read() - b0;
  ws.profile = nullptr;

  EXPECT_EQ(plain, profiled);
  double secs = 0;
  uint64_t phase_bytes = 0;
  for (const model::PhaseStats& s : prof.phases) {
    secs += s.seconds;
    phase_bytes += s.weight_bytes;
  }
  EXPECT_LE(secs, wall);
  EXPECT_GE(secs, 0.9 * wall);
  EXPECT_EQ(phase_bytes, bytes);
  for (model::Phase p : {model::Phase::Embedding, model::Phase::Norms, model::Phase::AttnProj, model::Phase::AttnCore,
                         model::Phase::Router, model::Phase::Experts, model::Phase::Head})
    EXPECT_GT(prof.phases[size_t(p)].seconds, 0) << model::phase_name(p);
  for (model::Phase p : {model::Phase::AttnProj, model::Phase::Experts, model::Phase::Head})
    EXPECT_GT(prof.phases[size_t(p)].weight_bytes, 0u) << model::phase_name(p);
  EXPECT_EQ(prof.phases[size_t(model::Phase::AttnCore)].weight_bytes, 0u);
}

}  // namespace
}  // namespace dsv3
