// The dsv3 command end to end: each subcommand on a generated checkpoint, and the errors a
// user meets (missing model, bad flags, bad tokens) as clear messages with a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_util.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

using Result = testutil::CommandResult;
Result sh(const std::string& args) { return testutil::run_dsv3(args); }

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(::testing::TempDir()) / ("dsv3_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    const Result r = sh("make-test-model --preset tiny --dtype fp8 --seed 5 --shards 2 --out " + (dir_ / "m").string());
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string model() { return (dir_ / "m").string(); }
  static inline fs::path dir_;
};

TEST_F(CliTest, GeneratedCheckpointHasThePublishedLayout) {
  EXPECT_TRUE(fs::exists(dir_ / "m/config.json"));
  EXPECT_TRUE(fs::exists(dir_ / "m/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir_ / "m/model-00001-of-00002.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "m/model-00002-of-00002.safetensors"));
  const io::Checkpoint ck = io::Checkpoint::open(model());
  const io::TensorRef* w = ck.find("model.layers.1.mlp.experts.3.down_proj.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->info->dtype, io::DType::F8_E4M3);
  const io::TensorRef* s = ck.find("model.layers.1.mlp.experts.3.down_proj.weight_scale_inv");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->info->dtype, io::DType::F32);
  EXPECT_EQ(s->info->shape, (std::vector<int64_t>{2, 1}));  // [ceil(200/128), ceil(72/128)]
  EXPECT_EQ(ck.find("model.layers.1.mlp.gate.e_score_correction_bias")->info->dtype, io::DType::F32);
  EXPECT_EQ(ck.find("model.layers.1.mlp.gate.weight")->info->dtype, io::DType::BF16);
  EXPECT_EQ(ck.find("model.embed_tokens.weight")->info->dtype, io::DType::BF16);
  EXPECT_EQ(ck.find("model.layers.3.eh_proj.weight")->info->dtype, io::DType::BF16);
  EXPECT_NE(ck.find("model.layers.3.shared_head.head.weight"), nullptr);
}

TEST_F(CliTest, GeneratorIsDeterministic) {
  const fs::path other = dir_ / "again";
  ASSERT_EQ(sh("make-test-model --preset tiny --dtype fp8 --seed 5 --shards 2 --out " + other.string()).code, 0);
  for (const char* f : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "config.json"}) {
    std::ifstream a(dir_ / "m" / f, std::ios::binary), b(other / f, std::ios::binary);
    const std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
    EXPECT_TRUE(sa == sb) << f << " differs between two runs with the same seed";
  }
}

TEST_F(CliTest, LogitsWritesEveryPositionAndMtp) {
  const std::string out = (dir_ / "l.safetensors").string();
  const Result r = sh("logits --model " + model() + " --tokens 0,17,345,999 --mtp --routing --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("4 tokens"), std::string::npos) << r.out;
  const io::SafetensorsFile f = io::SafetensorsFile::open(out);
  EXPECT_EQ(f.find("logits")->shape, (std::vector<int64_t>{4, 1000}));
  EXPECT_EQ(f.find("mtp_logits")->shape, (std::vector<int64_t>{3, 1000}));
  EXPECT_EQ(f.find("routing.1.indices")->shape, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(f.find("routing.3.indices")->shape, (std::vector<int64_t>{3, 4}));  // the MTP layer
}

TEST_F(CliTest, GradWritesTheLossAndEveryParameterGradient) {
  const std::string out = (dir_ / "grad.safetensors").string();
  const Result r = sh("grad --model " + model() + " --tokens 0,5,17,999,3 --mtp-weight 0.3 --balance-alpha 0.01 --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("loss "), std::string::npos) << r.out;
  const io::SafetensorsFile f = io::SafetensorsFile::open(out);
  const io::TensorInfo* loss = f.find("loss");
  ASSERT_NE(loss, nullptr);
  float l = 0;
  std::memcpy(&l, f.data(*loss), 4);
  EXPECT_GT(l, 0.0f);
  EXPECT_TRUE(std::isfinite(l));
  // FP8 weights: the gradient has the dequantised weight's shape and dtype F32.
  const io::TensorInfo* q = f.find("model.layers.1.self_attn.q_a_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, io::DType::F32);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{136, 200}));
  EXPECT_NE(f.find("model.layers.3.eh_proj.weight"), nullptr);  // MTP module
  EXPECT_EQ(f.find("model.layers.3.embed_tokens.weight"), nullptr);  // tied to the main embedding
  EXPECT_EQ(f.find("model.layers.1.mlp.gate.e_score_correction_bias"), nullptr);  // selection only
  EXPECT_EQ(f.find("model.layers.1.self_attn.q_a_proj.weight_scale_inv"), nullptr);
}

TEST_F(CliTest, InspectSummarisesTheCheckpoint) {
  const Result r = sh("inspect --model " + model());
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* want : {"deepseek_v3", "noaux_tc", "F8_E4M3", "latent cache 176 values", "unused       none"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
}

TEST_F(CliTest, InspectReportsUnusedTensors) {
  const fs::path d = dir_ / "extra";
  fs::copy(dir_ / "m", d);
  io::SafetensorsWriter w;
  const float v[2] = {1, 2};
  w.add_bytes("model.some_extra.weight", io::DType::F32, {2}, v, sizeof v);
  w.write((d / "model-00002-of-00002.safetensors.extra").string());
  // Register the extra shard in the index so the checkpoint stays consistent.
  nlohmann::json idx = nlohmann::json::parse(std::ifstream(d / "model.safetensors.index.json"));
  idx["weight_map"]["model.some_extra.weight"] = "model-00002-of-00002.safetensors.extra";
  std::ofstream(d / "model.safetensors.index.json") << idx.dump(2);
  const Result r = sh("inspect --model " + d.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("model.some_extra.weight"), std::string::npos) << r.out;
}

// `dsv3 bench --json` prints every figure the issue asks for, with sane values, in both
// weight-memory modes.
TEST_F(CliTest, BenchReportsEveryFigure) {
  for (const std::string mode : {"", " --hugepages", " --recache"}) {
    const Result r = sh("bench --model " + model() + " --prompt-tokens 8 --gen-tokens 4 --reps 1 --json" + mode);
    ASSERT_EQ(r.code, 0) << r.out;
    const size_t at = r.out.find('{');
    ASSERT_NE(at, std::string::npos) << r.out;
    const nlohmann::json j = nlohmann::json::parse(r.out.substr(at));
    for (const char* key : {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_bytes_per_token", "decode_gb_per_s",
                            "machine_read_gb_per_s", "decode_roofline_fraction", "machine_peak_gflops",
                            "prefill_peak_fraction", "peak_rss_bytes", "load_seconds"}) {
      ASSERT_TRUE(j.contains(key)) << key << " missing:\n" << r.out;
      EXPECT_GT(j[key].get<double>(), 0.0) << key;
    }
    EXPECT_EQ(j["weight_memory"], mode == " --hugepages" ? "hugepages" : "map");
    // How much of the mapping the kernel maps in 2 MB pages depends on the kernel and the
    // file system; --recache reads the file again to raise it where they allow.
    EXPECT_GE(j["weights_in_2mb_pages"].get<double>(), 0.0);
    EXPECT_LE(j["weights_in_2mb_pages"].get<double>(), 1.0);
    EXPECT_EQ(j["numerics"], "bf16");  // the default
    EXPECT_GT(j["machine_bf16_peak_gflops"].get<double>(), 0.0);
  }
}

// --profile adds time and weight bytes per token for every phase, prefill and decode; the
// phases' weight bytes add up to the bytes decode reads per token. --exact runs fp32.
TEST_F(CliTest, BenchProfileCoversEveryPhase) {
  const Result r =
      sh("bench --model " + model() + " --prompt-tokens 8 --gen-tokens 4 --reps 2 --json --profile --exact");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["numerics"], "fp32");
  for (const char* part : {"prefill", "decode"}) {
    const nlohmann::json& p = j["profile"][part];
    double bytes = 0;
    for (const char* phase : {"embedding", "norms_residual", "attention_projections", "attention_core", "router",
                              "experts", "dense_mlp", "head", "sampling", "other"}) {
      ASSERT_TRUE(p["phases"].contains(phase)) << part << " " << phase;
      EXPECT_GE(p["phases"][phase]["us_per_token"].get<double>(), 0.0);
      bytes += p["phases"][phase]["weight_bytes_per_token"].get<double>();
    }
    EXPECT_GT(p["phases"]["experts"]["us_per_token"].get<double>(), 0.0) << part;
    EXPECT_TRUE(p.contains("pool_wait_us_per_token"));
    if (std::string(part) == "decode") {
      EXPECT_NEAR(bytes, j["decode_bytes_per_token"].get<double>(), 1.0);
    }
  }
  // --batch: sequences decoding together; figures are totals, bytes per step.
  const Result batch = sh("bench --model " + model() + " --prompt-tokens 4 --gen-tokens 3 --reps 1 --batch 3 --json");
  ASSERT_EQ(batch.code, 0) << batch.out;
  const nlohmann::json jb = nlohmann::json::parse(batch.out.substr(batch.out.find('{')));
  EXPECT_EQ(jb["batch"], 3);
  EXPECT_GT(jb["decode_tokens_per_s"].get<double>(), 0.0);
  EXPECT_NEAR(jb["decode_bytes_per_step"].get<double>(), 3 * jb["decode_bytes_per_token"].get<double>(), 1.0);
  const Result bad = sh("bench --model " + model() + " --numerics fp16 --json");
  EXPECT_NE(bad.code, 0);
  const Result both = sh("bench --model " + model() + " --numerics bf16 --exact --json");
  EXPECT_NE(both.code, 0);
}

// Reading the weights into huge pages yields the very bytes the mapping shows.
TEST_F(CliTest, HugePageWeightsEqualMappedWeights) {
  const io::Checkpoint mapped = io::Checkpoint::open(model());
  const io::Checkpoint read = io::Checkpoint::open(model(), io::WeightMemory::HugePages);
  ASSERT_EQ(mapped.names(), read.names());
  for (const std::string& name : mapped.names()) {
    const io::TensorRef* a = mapped.find(name);
    const io::TensorRef* b = read.find(name);
    ASSERT_EQ(a->info->nbytes(), b->info->nbytes()) << name;
    EXPECT_NE(a->data, b->data) << name;
    EXPECT_EQ(std::memcmp(a->data, b->data, a->info->nbytes()), 0) << name;
  }
}

TEST_F(CliTest, ClearErrors) {
  struct Case {
    std::string args, want;
  };
  const std::string out = (dir_ / "x.safetensors").string();
  const Case cases[] = {
      {"logits --model /nonexistent/model --tokens 1 --out " + out, "does not exist"},
      {"logits --model " + model() + " --tokens 1,x,3 --out " + out, "'x' is not a token id"},
      {"logits --model " + model() + " --tokens 1,,3 --out " + out, "is not a token id"},
      {"logits --model " + model() + " --tokens 5,1000 --out " + out, "token id 1000 at position 1 is outside"},
      {"logits --model " + model() + " --tokens 1 --attention fancy --out " + out, "fancy"},
      {"logits --model " + model() + " --tokens 1", "--out is required"},
      {"make-test-model --preset huge --out " + (dir_ / "h").string(), "unknown preset 'huge'"},
      {"inspect --model " + (dir_ / "nothing").string(), "does not exist"},
      {"frobnicate", "subcommand"},
      {"grad --model /nonexistent/model --tokens 1,2 --out " + out, "does not exist"},
      {"grad --model " + model() + " --tokens 1,-2 --out " + out, "'-2' is not a token id"},
      {"grad --model " + model() + " --tokens 5,1000 --out " + out, "token id 1000 at position 1 is outside"},
      {"grad --model " + model() + " --tokens 5 --out " + out, "at least 2 tokens"},
      {"grad --model " + model() + " --tokens 5,6 --mtp-weight 0.3 --out " + out, "at least 3 tokens"},
      {"grad --model " + model() + " --tokens 5,6 --mtp-weight -1 --out " + out, "must be >= 0"},
  };
  for (const Case& c : cases) {
    const Result r = sh(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.out.find(c.want), std::string::npos) << c.args << "\n" << r.out;
  }
  // A folder without config.json.
  fs::create_directories(dir_ / "noconfig");
  const Result r = sh("inspect --model " + (dir_ / "noconfig").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dsv3
