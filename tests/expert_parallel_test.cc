// Expert parallelism: placements and their files, the plan's arithmetic, the model's split
// of a MoE layer between local and remote experts (with an in-process stand-in for the
// other ranks), and `mpirun -np 1, 2, 3` giving bit-identical logits (prefill, decode, MTP,
// every numerics, FP8 and BF16 checkpoints, copied experts), a clear end when something
// fails, and expert loads written for --redundant-experts.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "dist/expert_parallel.h"
#include "dist/placement.h"
#include "dist/plan.h"
#include "dist/world.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/moe.h"
#include "model/testgen.h"
#include "test_util.h"

namespace dsv3 {
namespace {

using nlohmann::json;

model::ModelConfig tiny() { return model::test_model_config("tiny"); }

TEST(ExpertPlacement, ContiguousRangesCoverEveryExpertOnce) {
  const model::ModelConfig c = tiny();
  const dist::ExpertPlacement p = dist::ExpertPlacement::contiguous(c, 3);
  ASSERT_FALSE(p.layers().empty());
  EXPECT_EQ(p.layers().back(), c.num_hidden_layers) << "the MTP block's MoE layer is placed too";
  for (int64_t l : p.layers()) {
    int prev = 0;
    for (int64_t e = 0; e < c.n_routed_experts; ++e) {
      ASSERT_EQ(p.holders(l, e).size(), 1u);
      const int r = p.holders(l, e)[0];
      EXPECT_GE(r, prev) << "ranges are contiguous";
      prev = r;
    }
    EXPECT_EQ(p.holders(l, 0)[0], 0);
    EXPECT_EQ(p.holders(l, c.n_routed_experts - 1)[0], 2);
  }
  int64_t total = 0;
  for (int r = 0; r < 3; ++r) total += p.held_by(r);
  EXPECT_EQ(total, c.n_routed_experts * int64_t(p.layers().size()));
  EXPECT_TRUE(p.holders(0, 0).empty()) << "layer 0 is dense";
}

TEST(ExpertPlacement, MapFileSetsLayersAndCopies) {
  const model::ModelConfig c = tiny();
  const int64_t E = c.n_routed_experts;
  json all = json::array(), one = json::array();
  for (int64_t e = 0; e < E; ++e) {
    all.push_back(int(e % 2));
    one.push_back(e == 3 ? json::array({0, 1}) : json(1));
  }
  const int64_t L = dist::ExpertPlacement::moe_layers(c).front();
  const dist::ExpertPlacement p =
      dist::ExpertPlacement::from_json({{"experts", all}, {"layers", {{std::to_string(L), one}}}}, c, 2);
  EXPECT_EQ(p.holders(L, 3), (std::vector<int>{0, 1}));
  EXPECT_EQ(p.holders(L, 4), (std::vector<int>{1}));
  EXPECT_EQ(p.holders(c.num_hidden_layers, 4), (std::vector<int>{0}));
  // Round trip through the file format.
  const dist::ExpertPlacement q = dist::ExpertPlacement::from_json(p.to_json(), c, 2);
  for (int64_t l : p.layers())
    for (int64_t e = 0; e < E; ++e) EXPECT_EQ(q.holders(l, e), p.holders(l, e));
}

TEST(ExpertPlacement, BadMapsAreRefusedWithTheReason) {
  const model::ModelConfig c = tiny();
  json short_list = json::array({0, 1});
  EXPECT_CONTAINS(testutil::error_of([&] { dist::ExpertPlacement::from_json({{"experts", short_list}}, c, 2); }),
                  "must list all 16 routed experts");
  json bad_rank = json::array();
  for (int e = 0; e < 16; ++e) bad_rank.push_back(e == 5 ? 7 : 0);
  EXPECT_CONTAINS(testutil::error_of([&] { dist::ExpertPlacement::from_json({{"experts", bad_rank}}, c, 2); }),
                  "expert 5: 7 is not a rank of this job (0..1)");
  EXPECT_CONTAINS(testutil::error_of([&] { dist::ExpertPlacement::from_json({{"layers", {{"0", bad_rank}}}}, c, 2); }),
                  "layer '0' is not a MoE layer");
  EXPECT_CONTAINS(testutil::error_of([&] { dist::ExpertPlacement::from_json({{"ranks", 4}}, c, 2); }),
                  "written for 4 ranks");
  EXPECT_CONTAINS(testutil::error_of([&] { dist::ExpertPlacement::from_json({{"expert", 1}}, c, 2); }),
                  "unknown key 'expert'");
}

TEST(ExpertPlacement, RedundantCopiesGoToTheLeastLoadedRank) {
  const model::ModelConfig c = tiny();
  dist::ExpertPlacement p = dist::ExpertPlacement::contiguous(c, 4);  // 4 experts per rank
  dist::ExpertLoads loads;
  const int64_t L = p.layers().front();
  std::vector<uint64_t> t(16, 10);
  t[0] = 100;  // rank 0 is hot
  t[1] = 90;
  t[12] = 1;   // rank 3 is cold
  loads.tokens[L] = t;
  p.add_redundant(loads, 2);
  EXPECT_EQ(p.holders(L, 0), (std::vector<int>{0, 3}));
  EXPECT_EQ(p.holders(L, 1).size(), 2u);
  EXPECT_NE(p.holders(L, 1)[1], 3) << "rank 3 already took half of expert 0's load";
  EXPECT_EQ(p.holders(p.layers().back(), 0).size(), 1u) << "a layer without loads keeps its placement";

  testutil::TempDir dir("loads");
  loads.save((dir / "loads.json"));
  EXPECT_EQ(dist::ExpertLoads::load((dir / "loads.json")).tokens, loads.tokens);
  std::ofstream(dir / "bad.json") << R"({"layers": {"1": [1, -2]}})";
  EXPECT_CONTAINS(testutil::error_of([&] { dist::ExpertLoads::load((dir / "bad.json")); }), "non-negative integers");
}

double choose(double n, double k) {
  double r = 1;
  for (int i = 1; i <= int(k); ++i) r = r * (n - k + i) / i;
  return r;
}

TEST(ExpertPlan, BytesAndTrafficFollowTheFormula) {
  model::ModelConfig c = tiny();
  c.n_group = 1;  // plain top-k: the expectations have a closed form
  c.topk_group = 1;
  for (int ranks : {1, 2, 4}) {
    const dist::ExpertPlacement p = dist::ExpertPlacement::contiguous(c, ranks);
    const dist::EpPlan plan = dist::make_plan(c, p, dist::estimated_bytes(c));
    uint64_t sum = 0;
    for (const dist::RankPlan& r : plan.per_rank) sum += r.bytes;
    EXPECT_EQ(sum, plan.total_bytes);
    EXPECT_EQ(plan.per_rank[0].bytes, plan.replicated_bytes + plan.routed_bytes / uint64_t(ranks));
    const double E = double(c.n_routed_experts), K = double(c.num_experts_per_tok), n = E / ranks, D = double(c.hidden_size);
    double want = 0;
    for (int r = 1; r < ranks; ++r) {
      const double touched = 1 - choose(E - n, K) / choose(E, K), slots = K * n / E;
      EXPECT_NEAR(plan.per_rank[size_t(r)].touched, touched, 1e-9);
      EXPECT_NEAR(plan.per_rank[size_t(r)].slots_per_token, slots, 1e-9);
      want += touched * (4 * D + 56) + 24 * slots + 4 * D * slots;
    }
    EXPECT_NEAR(plan.dispatch_bytes + plan.combine_bytes, want, 1e-6 * (want + 1));
    if (ranks == 1) {
      EXPECT_EQ(plan.bytes_per_token(), 0.0);
    }
  }
}

TEST(ExpertPlan, PublishedV3SplitsAsTheDocsSay) {
  const model::ModelConfig c = model::ModelConfig::load(std::string(DSV3_SOURCE_DIR) + "/bench/configs/DeepSeek-V3/config.json");
  const dist::EpPlan one = dist::make_plan(c, dist::ExpertPlacement::contiguous(c, 1), dist::estimated_bytes(c));
  EXPECT_NEAR(double(one.total_bytes) / 1e9, 685, 10);  // ~690 GB published, the MTP copies of embedding/head aside
  EXPECT_GT(double(one.routed_bytes) / double(one.total_bytes), 0.95);
  const dist::EpPlan eight = dist::make_plan(c, dist::ExpertPlacement::contiguous(c, 8), dist::estimated_bytes(c));
  // Each rank holds one of the 8 groups: a token keeps 4 groups, so about half the ranks see it.
  EXPECT_NEAR(eight.per_rank[1].touched, 0.45, 0.02);
  EXPECT_NEAR(eight.per_rank[1].slots_per_token, 1.0, 1e-9);
  EXPECT_LT(double(eight.per_rank[1].bytes), 0.13 * double(one.total_bytes));
}

// Runs the experts of odd index "elsewhere": on a second copy of the model that holds only
// those, through the same run_experts a follower rank uses.
class LoopbackHost final : public model::ExpertHost {
 public:
  bool holds(int64_t, int64_t e) const override { return e % 2 == 0; }
  std::vector<bool> place(int64_t, const std::vector<std::pair<int32_t, int64_t>>& used) override {
    std::vector<bool> here;
    for (const auto& [e, n] : used) here.push_back(e % 2 == 0);
    return here;
  }
  void dispatch(int64_t layer, kernels::Numerics numerics, const float* x, int64_t T, int64_t hidden,
                const std::vector<model::ExpertRows>& remote) override {
    model::Workspace ws(testutil::pool());
    ws.kernels.set_numerics(numerics);
    const model::ModelWeights& w = remote_model->weights();
    const model::MoeWeights& m = layer < remote_model->config().num_hidden_layers ? w.layers[size_t(layer)].experts
                                                                                 : w.mtp->block.experts;
    int64_t slots = 0;
    for (const auto& r : remote) slots = std::max(slots, r.slot0 + int64_t(r.tokens.size()));
    out.assign(size_t(slots * hidden), NAN);
    model::run_experts(ws, m, x, hidden, remote, out.data());
    pending = remote;
    (void)T;
    ++calls;
  }
  void collect(float* ye, int64_t hidden) override {
    ++collects;
    for (const auto& r : pending)
      std::copy(&out[size_t(r.slot0 * hidden)], &out[size_t((r.slot0 + int64_t(r.tokens.size())) * hidden)],
                ye + r.slot0 * hidden);
  }
  const model::Model* remote_model = nullptr;
  std::vector<model::ExpertRows> pending;
  std::vector<float> out;
  int calls = 0, collects = 0;
};

// Claims that every expert but 1 runs here, though only the even ones are loaded here: the
// local work fails after the remote work went out.
class MisplacingHost final : public model::ExpertHost {
 public:
  bool holds(int64_t, int64_t e) const override { return e % 2 == 0; }
  std::vector<bool> place(int64_t, const std::vector<std::pair<int32_t, int64_t>>& used) override {
    std::vector<bool> here;
    for (const auto& [e, n] : used) here.push_back(e != 1);
    return here;
  }
  void dispatch(int64_t, kernels::Numerics, const float*, int64_t, int64_t, const std::vector<model::ExpertRows>&) override {
    ++dispatches;
  }
  void collect(float*, int64_t) override { ++collects; }
  int dispatches = 0, collects = 0;
};

class OddExpertsOnly final : public model::ExpertHost {
 public:
  bool holds(int64_t, int64_t e) const override { return e % 2 == 1; }
  std::vector<bool> place(int64_t, const std::vector<std::pair<int32_t, int64_t>>& u) override {
    return std::vector<bool>(u.size(), true);
  }
  void dispatch(int64_t, kernels::Numerics, const float*, int64_t, int64_t, const std::vector<model::ExpertRows>&) override {}
  void collect(float*, int64_t) override {}
};

TEST(ExpertParallelModel, SplitLayersGiveTheSameLogitsBitForBit) {
  testutil::TempDir dir("split");
  model::TestModelOptions o;
  o.preset = "tiny";
  o.dtype = "fp8";
  o.out = dir.str();
  model::make_test_model(o);
  const model::Model whole = model::Model::load(dir.str());

  model::LoadOptions remote_opts;
  remote_opts.experts = std::make_shared<OddExpertsOnly>();
  remote_opts.experts_only = true;
  const model::Model remote = model::Model::load(dir.str(), remote_opts);
  EXPECT_TRUE(remote.weights().layers[0].attn.kv_a.empty()) << "an experts-only rank binds no attention";
  EXPECT_TRUE(remote.weights().unused.empty());

  auto host = std::make_shared<LoopbackHost>();
  host->remote_model = &remote;
  model::LoadOptions lo;
  lo.experts = host;
  const model::Model split = model::Model::load(dir.str(), lo);
  const int64_t L = dist::ExpertPlacement::moe_layers(whole.config()).front();
  EXPECT_TRUE(split.weights().layers[size_t(L)].experts.experts[1].gate.empty());
  EXPECT_FALSE(split.weights().layers[size_t(L)].experts.experts[0].gate.empty());
  EXPECT_TRUE(split.weights().idle.count("model.layers." + std::to_string(L) + ".mlp.experts.1.up_proj.weight"));
  EXPECT_TRUE(split.weights().idle.count("model.layers." + std::to_string(L) + ".mlp.experts.1.up_proj.weight_scale_inv"));
  EXPECT_TRUE(split.weights().unused.empty());

  const std::vector<int32_t> tokens{5, 17, 300, 2, 99, 41, 7, 600, 12};
  const int64_t T = int64_t(tokens.size()), V = whole.config().vocab_size, D = whole.config().hidden_size;
  for (kernels::Numerics n : {kernels::Numerics::Fp32, kernels::Numerics::Bf16, kernels::Numerics::Fp8}) {
    std::vector<float> a(size_t(T * V)), b(size_t(T * V)), na(size_t(T * D)), nb(size_t(T * D));
    model::Workspace ws(testutil::pool());
    ws.kernels.set_numerics(n);
    model::KvCache ca = whole.new_cache(T), cb = split.new_cache(T);
    model::ForwardOptions fa, fb;
    fa.normed = na.data();
    fb.normed = nb.data();
    whole.forward(ws, tokens.data(), T, ca, a.data(), fa);
    split.forward(ws, tokens.data(), T, cb, b.data(), fb);
    EXPECT_EQ(a, b) << kernels::numerics_name(n);
    // The MTP block's MoE layer is split too.
    std::vector<float> ma(size_t((T - 1) * V)), mb(size_t((T - 1) * V));
    model::KvCache ma_c = whole.new_mtp_cache(T), mb_c = split.new_mtp_cache(T);
    whole.forward_mtp(ws, na.data(), tokens.data() + 1, T - 1, ma_c, ma.data());
    split.forward_mtp(ws, nb.data(), tokens.data() + 1, T - 1, mb_c, mb.data());
    EXPECT_EQ(ma, mb) << kernels::numerics_name(n);
  }
  EXPECT_GT(host->calls, 0);
}

TEST(ExpertParallelModel, AFailureAfterDispatchStillCollects) {
  testutil::TempDir dir("misplaced");
  model::TestModelOptions o;
  o.out = dir.str();
  model::make_test_model(o);
  auto host = std::make_shared<MisplacingHost>();
  model::LoadOptions lo;
  lo.experts = host;
  const model::Model m = model::Model::load(dir.str(), lo);
  model::Workspace ws(testutil::pool());
  model::KvCache cache = m.new_cache(64);
  std::vector<int32_t> tokens(48);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(7 * i + 3);
  std::vector<float> logits(size_t(m.config().vocab_size));
  model::ForwardOptions fo;
  fo.last_only = true;
  EXPECT_CONTAINS(testutil::error_of([&] { m.forward(ws, tokens.data(), int64_t(tokens.size()), cache, logits.data(), fo); }),
                  "is not loaded in this process");
  EXPECT_GT(host->dispatches, 0);
  EXPECT_EQ(host->collects, host->dispatches) << "the other ranks' answers are taken before the error propagates";
}

// ---- mpirun ---------------------------------------------------------------------------------

bool have_mpirun() {
  return dist::World::available() && std::system("command -v mpirun >/dev/null 2>&1") == 0;
}

// Root may run mpirun in CI containers; the sanitizer build's leak checker would flag
// OpenMPI's own allocations, which are not ours.
std::string mpirun(int np, const std::string& args) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 timeout 300 mpirun -np " +
         std::to_string(np) + " --oversubscribe " + std::string(DSV3_BINARY) + " --threads 1 " + args + " 2>&1";
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class ExpertParallelMpi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testutil::TempDir("ep");
    for (const char* dtype : {"fp8", "bf16"}) {
      model::TestModelOptions o;
      o.preset = "tiny";
      o.dtype = dtype;
      o.out = (*dir_ / dtype);
      model::make_test_model(o);
    }
    for (const char* preset : {"tiny-v2", "tiny-v2-lite", "tiny-noq"}) {  // V2 routings, plain q_proj
      model::TestModelOptions o;
      o.preset = preset;
      o.out = (*dir_ / preset);
      model::make_test_model(o);
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    if (!have_mpirun()) GTEST_SKIP() << "no MPI build or no mpirun (openmpi-bin)";
  }
  static testutil::TempDir* dir_;
};
testutil::TempDir* ExpertParallelMpi::dir_ = nullptr;

TEST_F(ExpertParallelMpi, LogitsAreBitIdenticalForOneTwoAndThreeRanks) {
  const std::string tokens = "3,141,59,265,358,979,323,846,264,338,327,950,288,419,716,939";
  for (const char* dtype : {"fp8", "bf16"})
    for (const std::string mode : {"", "--decode", "--numerics bf16", "--numerics fp8 --decode", "--reference-kernels"}) {
      std::string want;
      for (int np : {1, 2, 3}) {
        const std::string out = (*dir_ / ("out" + std::to_string(np) + ".safetensors"));
        const auto r = testutil::run_shell(mpirun(np, "logits --model " + (*dir_ / dtype) + " --mtp --routing --tokens " +
                                                          tokens + " " + mode + " --out " + out));
        ASSERT_EQ(r.code, 0) << r.out;
        const std::string got = file_bytes(out);
        ASSERT_GT(got.size(), 1000u);
        if (np == 1) {
          want = got;
        } else {
          EXPECT_TRUE(got == want) << dtype << " " << mode << ": np " << np << " differs from one process";
        }
      }
    }
}

TEST_F(ExpertParallelMpi, OtherPresetsAndRoutingsToo) {
  for (const char* preset : {"tiny-v2", "tiny-v2-lite", "tiny-noq"}) {
    std::string want;
    for (int np : {1, 3}) {
      const std::string out = (*dir_ / (std::string(preset) + std::to_string(np) + ".safetensors"));
      const auto r = testutil::run_shell(mpirun(np, "logits --model " + (*dir_ / preset) +
                                                        " --routing --tokens 5,6,7,8,9,10,11,12 --out " + out));
      ASSERT_EQ(r.code, 0) << r.out;
      if (np == 1) {
        want = file_bytes(out);
      } else {
        EXPECT_TRUE(file_bytes(out) == want) << preset;
      }
    }
  }
}

TEST_F(ExpertParallelMpi, CopiedExpertsAndMapsKeepTheLogits) {
  const std::string model = (*dir_ / "fp8"), loads = (*dir_ / "loads.json");
  const std::string tokens = "--tokens 9,8,7,6,5,4,3,2,1,100,200,300 --mtp";
  auto r = testutil::run_shell(mpirun(1, "--save-expert-loads " + loads + " logits --model " + model + " " + tokens +
                                             " --out " + (*dir_ / "a.safetensors")));
  ASSERT_EQ(r.code, 0) << r.out;
  const dist::ExpertLoads l = dist::ExpertLoads::load(loads);
  const model::ModelConfig c = model::test_model_config("tiny");
  ASSERT_EQ(l.tokens.size(), dist::ExpertPlacement::moe_layers(c).size());
  uint64_t routed = 0;
  for (const auto& [layer, t] : l.tokens)
    if (layer < c.num_hidden_layers)
      for (uint64_t n : t) routed += n;
  const int64_t moe_main = int64_t(l.tokens.size()) - 1;
  EXPECT_EQ(routed, uint64_t(12 * c.num_experts_per_tok * moe_main)) << "every token's slots counted once per layer";

  r = testutil::run_shell(mpirun(3, "--redundant-experts 4 --expert-loads " + loads + " logits --model " + model + " " +
                                        tokens + " --out " + (*dir_ / "b.safetensors")));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(file_bytes((*dir_ / "a.safetensors")) == file_bytes((*dir_ / "b.safetensors")));

  // Every expert on rank 1 except expert 0, which both ranks hold.
  json list = json::array();
  for (int e = 0; e < 16; ++e) list.push_back(e == 0 ? json::array({0, 1}) : json(1));
  std::ofstream(*dir_ / "map.json") << json{{"experts", list}}.dump();
  r = testutil::run_shell(mpirun(2, "--expert-map " + (*dir_ / "map.json") + " logits --model " + model + " " + tokens +
                                        " --out " + (*dir_ / "c.safetensors")));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(file_bytes((*dir_ / "a.safetensors")) == file_bytes((*dir_ / "c.safetensors")));
}

TEST_F(ExpertParallelMpi, SpeculativeGenerationMatchesOneProcess) {
  const std::string args = "generate --model " + std::string(DSV3_SOURCE_DIR) +
                           "/default-model --prompt 'In the beginning' -n 24 --draft 2 --seed 3 --temperature 0.8";
  // The text on stdout (the statistics line on stderr has speeds that differ run to run).
  auto text = [&](int np) {
    std::string cmd = mpirun(np, args);
    cmd.replace(cmd.rfind(" 2>&1"), 5, " 2>/dev/null");
    return testutil::run_shell(cmd);
  };
  const auto one = text(1), two = text(2), three = text(3);
  const std::string huge_args = args + " --hugepages";
  std::string huge_cmd = mpirun(2, huge_args);
  huge_cmd.replace(huge_cmd.rfind(" 2>&1"), 5, " 2>/dev/null");
  const auto huge = testutil::run_shell(huge_cmd);  // each rank reads only its tensors into memory
  EXPECT_EQ(huge.out, one.out);
  ASSERT_EQ(one.code, 0) << one.out;
  ASSERT_EQ(two.code, 0) << two.out;
  ASSERT_EQ(three.code, 0) << three.out;
  EXPECT_GT(one.out.size(), 20u);
  EXPECT_EQ(two.out, one.out);
  EXPECT_EQ(three.out, one.out);
}

TEST_F(ExpertParallelMpi, BenchReportsRanksTrafficAndThePlan) {
  const auto r = testutil::run_shell(mpirun(2, "bench --json --model " + (*dir_ / "fp8") +
                                                   " --prompt-tokens 16 --gen-tokens 8 --reps 1"));
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out.substr(r.out.find('{')));
  const json& e = j.at("expert_parallel");
  EXPECT_EQ(e.at("ranks"), 2);
  ASSERT_EQ(e.at("per_rank").size(), 2u);
  for (const json& rank : e.at("per_rank")) {
    const double got = rank.at("weight_bytes").get<double>(), plan = rank.at("planned_bytes").get<double>();
    EXPECT_NEAR(got, plan, 0.02 * plan) << "rank " << rank.at("rank") << " binds what the plan says it holds";
    // Pages shared with a neighbouring tensor of another rank count too: tiny tensors here.
    EXPECT_LE(rank.at("weights_resident_bytes").get<double>(), 1.1 * plan + 512 * 1024) << "and touches about that";
  }
  EXPECT_LT(e["per_rank"][1]["weight_bytes"].get<double>(), 0.5 * e["one_process_weight_bytes"].get<double>());
  EXPECT_GT(e.at("decode").at("bytes_per_token").get<double>(), 0);
  EXPECT_GT(e.at("decode").at("messages_per_token").get<double>(), 0);
}

TEST_F(ExpertParallelMpi, FailuresEndTheJobWithAClearError) {
  auto r = testutil::run_shell(mpirun(2, "logits --model " + (*dir_ / "missing") + " --tokens 1,2 --out x"));
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.out, "does not exist");
  std::ofstream(*dir_ / "short.json") << R"({"experts": [0, 1]})";
  r = testutil::run_shell(mpirun(2, "--expert-map " + (*dir_ / "short.json") + " logits --model " + (*dir_ / "fp8") +
                                        " --tokens 1,2 --out x"));
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.out, "must list all 16 routed experts");
  r = testutil::run_shell(mpirun(2, "--redundant-experts 2 logits --model " + (*dir_ / "fp8") + " --tokens 1,2 --out x"));
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.out, "--redundant-experts needs --expert-loads");
  // A follower that dies mid-job takes the job down instead of leaving the leader waiting.
  const std::string serve = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 "
                            "timeout 60 mpirun -np 2 --oversubscribe " + std::string(DSV3_BINARY) +
                            " --threads 1 serve --port 0 --model " + std::string(DSV3_SOURCE_DIR) + "/default-model";
  r = testutil::run_shell("(" + serve + ") >/dev/null 2>&1 & p=$!; sleep 5; pkill -9 -n -f '^" + std::string(DSV3_BINARY) +
                          " --threads 1 serve'; s=$(date +%s); wait $p; echo exit=$? after=$(( $(date +%s) - s ))");
  ASSERT_NE(r.out.find("exit="), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("exit=0 "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("exit=124"), std::string::npos) << "the job hung until the timeout: " << r.out;
}

}  // namespace
}  // namespace dsv3
