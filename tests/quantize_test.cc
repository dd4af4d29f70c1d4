// `dsv3 quantize` (model/quantize.h): a BF16/F32 checkpoint to the published FP8 layout,
// byte for byte what the trainer's export and the test-model generator write for the same
// weights; the quantized model runs, close to the original; bad inputs are named.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/testgen.h"
#include "test_util.h"
#include "train/checkpoint_export.h"
#include "train/model_grad.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

std::string bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every shard and the index of a and b are the same bytes.
void expect_same_weights(const fs::path& a, const fs::path& b) {
  int shards = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    if (e.path().extension() != ".safetensors") continue;
    ++shards;
    EXPECT_TRUE(bytes_of(e.path()) == bytes_of(b / e.path().filename())) << e.path().filename();
  }
  EXPECT_GT(shards, 0);
  EXPECT_EQ(bytes_of(a / "model.safetensors.index.json"), bytes_of(b / "model.safetensors.index.json"));
}

TEST(Quantize, GivesTheGeneratorsFp8Bytes) {
  testutil::TempDir tmp("quantize");
  const fs::path dir = tmp.path();
  model::make_test_model({"tiny", "f32", 9, 2, (dir / "f32").string(), false});
  model::make_test_model({"tiny", "fp8", 9, 2, (dir / "fp8").string(), false});
  const model::QuantizeResult r = model::quantize_checkpoint((dir / "f32").string(), (dir / "q").string(), {});
  EXPECT_GT(r.fp8_tensors, 0);
  EXPECT_LT(r.bytes_out, r.bytes_in);
  expect_same_weights(dir / "q", dir / "fp8");
  std::ifstream c(dir / "q" / "config.json");
  const nlohmann::json j = nlohmann::json::parse(c);
  EXPECT_EQ(j["quantization_config"]["quant_method"], "fp8");
  EXPECT_EQ(j["quantization_config"]["weight_block_size"], nlohmann::json::array({128, 128}));
}

TEST(Quantize, GivesTheTrainersFp8Export) {
  testutil::TempDir tmp("quantize_train");
  const fs::path dir = tmp.path();
  const model::ModelConfig cfg = model::test_model_config("tiny");
  train::TrainModel m = train::TrainModel::init(cfg, 3, 0.05, testutil::pool());
  train::export_hf_checkpoint((dir / "f32").string(), cfg, train::named_tensors(m), {"f32", 2, ""});
  train::export_hf_checkpoint((dir / "fp8").string(), cfg, train::named_tensors(m), {"fp8", 2, ""});
  model::quantize_checkpoint((dir / "f32").string(), (dir / "q").string(), {});
  expect_same_weights(dir / "q", dir / "fp8");
}

TEST(Quantize, Bf16ModelRunsCloseToTheOriginal) {
  testutil::TempDir tmp("quantize_bf16");
  const fs::path dir = tmp.path();
  model::make_test_model({"tiny", "bf16", 4, 1, (dir / "bf16").string(), false});
  std::ofstream(dir / "bf16" / "tokenizer.json") << "{}";  // other files are copied along
  model::quantize_checkpoint((dir / "bf16").string(), (dir / "q").string(), {3, false});
  EXPECT_TRUE(fs::exists(dir / "q" / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(dir / "q" / "model-00003-of-00003.safetensors"));
  const model::Model a = model::Model::load((dir / "bf16").string()), b = model::Model::load((dir / "q").string());
  EXPECT_TRUE(b.config().quantization.has_value());
  // Every quantized weight is its BF16 weight rounded to e4m3 on its block's scale: within
  // half an e4m3 step (relative 2^-4; 2^-9 absolute near zero, the subnormal step) of it.
  const kernels::WeightMatrix& wa = a.weights().layers[1].attn.kv_b;
  const kernels::WeightMatrix& wb = b.weights().layers[1].attn.kv_b;
  ASSERT_EQ(wb.dtype, io::DType::F8_E4M3);
  for (int64_t r = 0; r < wa.rows; ++r)
    for (int64_t c = 0; c < wa.cols; ++c) {
      const float s = wb.scale[(r / 128) * wb.scale_cols + c / 128];
      const float x = wa.at(r, c), q = wb.at(r, c);
      ASSERT_LE(std::abs(q - x), std::max(std::abs(x) / 16, s / 512) * 1.0001f) << r << "," << c;
    }
  // And the quantized model runs.
  const std::vector<int32_t> toks = {1, 50, 300, 7, 999};
  const int64_t V = a.config().vocab_size, T = int64_t(toks.size());
  std::vector<float> lb(size_t(T * V));
  model::Workspace ws(testutil::pool());
  model::KvCache cb = b.new_cache(T);
  b.forward(ws, toks.data(), T, cb, lb.data());
  for (float v : lb) ASSERT_TRUE(std::isfinite(v));
}

TEST(Quantize, BadInputsAreNamed) {
  testutil::TempDir tmp("quantize_bad");
  const fs::path dir = tmp.path();
  model::make_test_model({"tiny", "fp8", 2, 1, (dir / "fp8").string(), false});
  EXPECT_CONTAINS(testutil::error_of([&] { model::quantize_checkpoint((dir / "fp8").string(), (dir / "q").string(), {}); }),
                  "already quantized");
  model::make_test_model({"tiny", "bf16", 2, 1, (dir / "bf16").string(), false});
  EXPECT_CONTAINS(testutil::error_of([&] { model::quantize_checkpoint((dir / "bf16").string(), (dir / "bf16").string(), {}); }),
                  "--out must differ");
  EXPECT_CONTAINS(testutil::error_of([&] { model::quantize_checkpoint((dir / "nothing").string(), (dir / "q").string(), {}); }),
                  "is not a model folder");
}

}  // namespace
}  // namespace dsv3
