// Context extension with `dsv3 train` (docs/training.md): a run that starts from a checkpoint
// (init_from) with new position settings (model.max_position_embeddings, model.rope_scaling)
// and passkey examples mixed into its windows (data.passkey_fraction).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/passkey_text.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/model_factory.h"
#include "train/passkey_data.h"
#include "train/run_config.h"
#include "train_test_util.h"

namespace dsv3 {
namespace {

using testutil::error_of;
using testutil::run_dsv3;

class TrainExtension : public ::testing::Test {
 protected:
  void SetUp() override {
    testutil::write_byte_tokenizer(dir_.str());
    std::ofstream(dir_ / "corpus.txt") << testutil::corpus_text(4, 3000);
  }
  std::string write_config(const std::string& name, const nlohmann::json& patch) {
    nlohmann::json j = {{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}}},
                        {"data", {{"tokenizer", "."}, {"train_files", {"corpus.txt"}}, {"eval_sequences", 0}}},
                        {"seq_len", 32},
                        {"batch_size", 2},
                        {"steps", 2},
                        {"optimizer", {{"lr", 0.01}}},
                        {"export_dtype", "bf16"},
                        {"out_dir", "base"}};
    if (!patch.is_null()) j.merge_patch(patch);
    std::ofstream(dir_ / name) << j.dump(2);
    return dir_ / name;
  }
  testutil::TempDir dir_{"trainext"};
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The extended run starts from the base checkpoint's weights (with lr 0 its export is the
// base export, byte for byte), keeps its architecture, and writes the new YaRN settings.
TEST_F(TrainExtension, InitFromKeepsTheWeightsAndWritesTheNewPositions) {
  const auto base = run_dsv3("train -q --config " + write_config("base.json", {}));
  ASSERT_EQ(base.code, 0) << base.out;
  const nlohmann::json ext = {{"model", {{"preset", nullptr},
                                         {"max_position_embeddings", 4096},
                                         {"rope_scaling", {{"factor", 16}, {"original_max_position_embeddings", 256}}}}},
                              {"init_from", "base/hf"},
                              {"seq_len", 300},
                              {"batch_size", 1},
                              {"steps", 1},
                              {"optimizer", {{"lr", 0.0}}},
                              {"balance", {{"gamma", 0.0}}},  // the gate biases stay too
                              {"data", {{"passkey_fraction", 1.0}}},
                              {"out_dir", "ext"}};
  const auto r = run_dsv3("train -q --config " + write_config("ext.json", ext));
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json b = read_json(dir_ / "base/hf/config.json"), e = read_json(dir_ / "ext/hf/config.json");
  EXPECT_EQ(e.at("max_position_embeddings"), 4096);
  EXPECT_EQ(e.at("rope_scaling").at("type"), "yarn");
  EXPECT_EQ(e.at("rope_scaling").at("factor"), 16.0);
  EXPECT_EQ(e.at("rope_scaling").at("original_max_position_embeddings"), 256);
  for (const char* k : {"hidden_size", "num_hidden_layers", "kv_lora_rank", "n_routed_experts", "vocab_size"})
    EXPECT_EQ(e.at(k), b.at(k)) << k;
  auto file_bytes = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const auto& f : std::filesystem::directory_iterator(dir_ / "base/hf")) {
    if (f.path().extension() != ".safetensors") continue;
    EXPECT_EQ(file_bytes(f.path()), file_bytes((dir_ / "ext/hf") + "/" + f.path().filename().string()))
        << f.path().filename();
  }
  EXPECT_EQ(read_json(dir_ / "ext/run.json").at("init_from"), (dir_ / "base/hf"));

  // data.passkey_loss "all": the same example, every prediction counted, so the step's
  // cross-entropy is another mean (over ~300 predictions, not the answer's few).
  nlohmann::json all = ext;
  all["data"]["passkey_loss"] = "all";
  all["out_dir"] = "ext_all";
  ASSERT_EQ(run_dsv3("train -q --config " + write_config("ext_all.json", all)).code, 0);
  auto first_ce = [&](const std::string& run) {
    std::ifstream in(dir_ / run + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.at("kind") == "train") return j.at("main_ce").get<double>();
    }
    return -1.0;
  };
  const double answer_ce = first_ce("ext"), all_ce = first_ce("ext_all");
  ASSERT_GT(answer_ce, 0);
  ASSERT_GT(all_ce, 0);
  EXPECT_GT(std::fabs(answer_ce - all_ce), 1e-3) << answer_ce << " " << all_ce;
  EXPECT_EQ(read_json(dir_ / "ext_all/run.json").at("data").at("passkey_loss"), "all");
}

TEST_F(TrainExtension, BadSettingsAreClearErrors) {
  const auto base = run_dsv3("train -q --config " + write_config("base.json", {}));
  ASSERT_EQ(base.code, 0) << base.out;
  // Too short for a passkey example.
  auto r = run_dsv3("train -q --config " +
                    write_config("short.json", {{"data", {{"passkey_fraction", 0.5}}}, {"out_dir", "short"}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "data.passkey_fraction needs windows of at least");
  // init_from names the architecture: no model.preset beside it.
  r = run_dsv3("train -q --config " + write_config("both.json", {{"init_from", "base/hf"}, {"out_dir", "both"}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "exactly one of 'model.config' (a config.json) or 'model.preset', or 'init_from'");
  r = run_dsv3("train -q --config " + write_config("missing.json", {{"model", {{"preset", nullptr}}},
                                                                     {"init_from", "nowhere"},
                                                                     {"out_dir", "missing"}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "nowhere");
  // A YaRN factor below 1 is refused by the config check.
  r = run_dsv3("train -q --config " + write_config("bad.json", {{"model", {{"rope_scaling", {{"beta_fast", 0}}}}},
                                                                 {"out_dir", "bad"}}));
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "model.rope_scaling.beta_fast");
}

TEST(TrainExtensionConfig, KeysRoundTripAndAreChecked) {
  const char* text = R"({
    "init_from": "ckpt",
    "model": {"type": "deepseek_v3", "max_position_embeddings": 8192,
              "rope_scaling": {"factor": 32, "beta_fast": 32}},
    "data": {"tokenizer": "tok", "train_files": ["a.txt"], "passkey_fraction": 0.25},
    "steps": 3, "out_dir": "run"})";
  const train::RunConfig c = train::RunConfig::parse(text, "run.json", "/base");
  EXPECT_EQ(c.init_from, "/base/ckpt");
  EXPECT_EQ(c.model.max_position_embeddings, 8192);
  ASSERT_EQ(c.model.rope_scaling.size(), 2u);
  EXPECT_EQ(c.model.rope_scaling[0].first, "factor");
  EXPECT_DOUBLE_EQ(c.data.passkey_fraction, 0.25);
  EXPECT_EQ(c.data.passkey_loss, "answer");  // the default
  EXPECT_EQ(train::RunConfig::parse(c.to_json(), "saved", "").to_json(), c.to_json());
  auto parse = [&](std::string s) { return error_of([&] { train::RunConfig::parse(s, "run.json", "/base"); }); };
  EXPECT_CONTAINS(parse(R"({"model": {"type": "deepseek_v3", "preset": "tiny", "rope_scaling": {"alpha": 1}},
                             "data": {"tokenizer": "t", "train_files": ["a"]}, "steps": 1, "out_dir": "r"})"),
                  "unknown key 'model.rope_scaling.alpha'");
  EXPECT_CONTAINS(parse(R"({"model": {"type": "deepseek_v3", "preset": "tiny"},
                             "data": {"tokenizer": "t", "train_files": ["a"], "passkey_fraction": 2}, "steps": 1,
                             "out_dir": "r"})"),
                  "'data.passkey_fraction' must be in [0, 1]");
  EXPECT_CONTAINS(parse(R"({"model": {"type": "deepseek_v3", "preset": "tiny"},
                             "data": {"tokenizer": "t", "train_files": ["a"], "passkey_loss": "needle"}, "steps": 1,
                             "out_dir": "r"})"),
                  "'data.passkey_loss' must be \"answer\" or \"all\", got \"needle\"");
  EXPECT_CONTAINS(parse(R"({"model": {"type": "debug_moe_bigram"}, "init_from": "x",
                             "data": {"tokenizer": "t", "train_files": ["a"]}, "steps": 1, "out_dir": "r"})"),
                  "apply only to model.type deepseek_v3");
}

// Turning YaRN on over a config without it: the original length is the one the model was
// trained at, not the new maximum.
TEST(TrainExtensionConfig, TurningYarnOnKeepsTheTrainedLength) {
  testutil::TempDir dir("yarnon");
  train::RunConfig run;
  run.model.preset = "tiny";
  model::ModelConfig plain = train::run_model_config(run, 0);
  plain.rope_scaling = model::RopeScaling{};  // plain RoPE
  std::ofstream(dir / "config.json") << plain.to_json();
  run.model.preset.clear();
  run.model.config = dir / "config.json";
  ASSERT_FALSE(train::run_model_config(run, 0).rope_scaling.yarn);
  run.model.max_position_embeddings = 8 * plain.max_position_embeddings;
  run.model.rope_scaling = {{"factor", 8.0}};
  const model::ModelConfig c = train::run_model_config(run, 0);
  EXPECT_TRUE(c.rope_scaling.yarn);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, plain.max_position_embeddings);
  EXPECT_EQ(c.max_position_embeddings, 8 * plain.max_position_embeddings);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
}

// An example is exactly one window: the instruction, training text with the needle inside
// it, the question and the answer; which windows become examples depends only on (seed,
// step, sequence), and the same (step, sequence) gives the same example.
TEST(TrainPasskeyExamples, ExactlyOneWindowEndingInTheAnswer) {
  testutil::TempDir dir("passkeyex");
  testutil::write_byte_tokenizer(dir.str());
  const Tokenizer tok = Tokenizer::load(dir.str());
  const int64_t window = 400;
  train::PasskeyExamples ex(tok, 0.5, window, 7);
  std::vector<int32_t> hay(static_cast<size_t>(window));
  for (size_t i = 0; i < hay.size(); ++i) hay[i] = int32_t('a' + i % 26);
  int picked = 0;
  for (int64_t k = 0; k < 400; ++k) picked += ex.picks(3, k);
  EXPECT_GT(picked, 150);
  EXPECT_LT(picked, 250);
  auto make = [&](int64_t step, int64_t k) {
    const int32_t* p = ex.make(hay.data(), step, k);
    return std::vector<int32_t>(p, p + window);
  };
  const std::vector<int32_t> a = make(3, 5);
  EXPECT_EQ(make(3, 5), a);
  EXPECT_EQ(a[0] == tok.bos_id(), tok.add_bos_by_default());  // as the evaluation's prompts
  const std::string text = tok.decode(a, /*skip_special=*/true);
  EXPECT_EQ(text.rfind(passkey_text::kIntro, 0), 0u) << text;
  const size_t q = text.rfind(passkey_text::kQuestion);
  ASSERT_NE(q, std::string::npos) << text;
  const std::string key = text.substr(q + std::string(passkey_text::kQuestion).size() + 1, 5);
  EXPECT_EQ(text.substr(q + std::string(passkey_text::kQuestion).size()), " " + key + ".");
  EXPECT_NE(text.find(passkey_text::needle(key)), std::string::npos) << text;
  EXPECT_NE(make(4, 5), a);
  // The loss mask: the predictions of the answer's tokens, the window's last ones.
  (void)make(3, 5);
  const std::vector<int32_t> answer = tok.encode(" " + key + ".");
  for (int64_t i = 0; i < window - 1; ++i)
    EXPECT_EQ(ex.mask()[i], i >= window - 1 - int64_t(answer.size()) ? 1 : 0) << i;
  EXPECT_CONTAINS(error_of([&] { train::PasskeyExamples(tok, 0.5, 100, 7); }),
                  "data.passkey_fraction needs windows of at least");
}

}  // namespace
}  // namespace dsv3
