// model::ModelConfig (src/model/config.h): parsing the published configs, every validation error,
// the to_json round trip, the YaRN softmax scale and rotary frequencies.
#include "model/config.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <numbers>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "test_util.h"

namespace dsv3 {
namespace {

using json = nlohmann::json;
using testutil::error_of;

// deepseek-ai/DeepSeek-V3 config.json as published (keys in the published order).
constexpr const char* kDeepSeekV3 = R"json({
  "architectures": ["DeepseekV3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {
    "AutoConfig": "configuration_deepseek.DeepseekV3Config",
    "AutoModel": "modeling_deepseek.DeepseekV3Model",
    "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"
  },
  "aux_loss_alpha": 0.001,
  "bos_token_id": 0,
  "eos_token_id": 1,
  "ep_size": 1,
  "first_k_dense_replace": 3,
  "hidden_act": "silu",
  "hidden_size": 7168,
  "initializer_range": 0.02,
  "intermediate_size": 18432,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v3",
  "moe_intermediate_size": 2048,
  "moe_layer_freq": 1,
  "n_group": 8,
  "n_routed_experts": 256,
  "n_shared_experts": 1,
  "norm_topk_prob": true,
  "num_attention_heads": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 61,
  "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1,
  "pretraining_tp": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "quantization_config": {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "weight_block_size": [128, 128]
  },
  "rms_norm_eps": 1e-06,
  "rope_scaling": {
    "beta_fast": 32,
    "beta_slow": 1,
    "factor": 40,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
    "original_max_position_embeddings": 4096,
    "type": "yarn"
  },
  "rope_theta": 10000,
  "routed_scaling_factor": 2.5,
  "scoring_func": "sigmoid",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 4,
  "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 129280
})json";

// deepseek-ai/DeepSeek-V2-Lite config.json.
constexpr const char* kDeepSeekV2Lite = R"json({
  "architectures": ["DeepseekV2ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {
    "AutoConfig": "configuration_deepseek.DeepseekV2Config",
    "AutoModel": "modeling_deepseek.DeepseekV2Model",
    "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM"
  },
  "aux_loss_alpha": 0.001,
  "bos_token_id": 100000,
  "eos_token_id": 100001,
  "first_k_dense_replace": 1,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 10944,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v2",
  "moe_intermediate_size": 1408,
  "moe_layer_freq": 1,
  "n_group": 1,
  "n_routed_experts": 64,
  "n_shared_experts": 2,
  "norm_topk_prob": false,
  "num_attention_heads": 16,
  "num_experts_per_tok": 6,
  "num_hidden_layers": 27,
  "num_key_value_heads": 16,
  "pretraining_tp": 1,
  "q_lora_rank": null,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "rms_norm_eps": 1e-06,
  "rope_scaling": {
    "beta_fast": 32,
    "beta_slow": 1,
    "factor": 40,
    "mscale": 0.707,
    "mscale_all_dim": 0.707,
    "original_max_position_embeddings": 4096,
    "type": "yarn"
  },
  "rope_theta": 10000,
  "routed_scaling_factor": 1.0,
  "scoring_func": "softmax",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 1,
  "topk_method": "greedy",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.33.1",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 102400
})json";

model::ModelConfig parse_v3() { return model::ModelConfig::parse(kDeepSeekV3, "v3/config.json"); }

// Every field, compared exactly (to_json writes doubles with round-trip precision).
void expect_same_config(const model::ModelConfig& a, const model::ModelConfig& b) {
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.moe_intermediate_size, b.moe_intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_nextn_predict_layers, b.num_nextn_predict_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.n_shared_experts, b.n_shared_experts);
  EXPECT_EQ(a.n_routed_experts, b.n_routed_experts);
  EXPECT_EQ(a.routed_scaling_factor, b.routed_scaling_factor);
  EXPECT_EQ(a.topk_method, b.topk_method);
  EXPECT_EQ(a.n_group, b.n_group);
  EXPECT_EQ(a.topk_group, b.topk_group);
  EXPECT_EQ(a.num_experts_per_tok, b.num_experts_per_tok);
  EXPECT_EQ(a.moe_layer_freq, b.moe_layer_freq);
  EXPECT_EQ(a.first_k_dense_replace, b.first_k_dense_replace);
  EXPECT_EQ(a.norm_topk_prob, b.norm_topk_prob);
  EXPECT_EQ(a.scoring_func, b.scoring_func);
  EXPECT_EQ(a.q_lora_rank, b.q_lora_rank);
  EXPECT_EQ(a.kv_lora_rank, b.kv_lora_rank);
  EXPECT_EQ(a.qk_nope_head_dim, b.qk_nope_head_dim);
  EXPECT_EQ(a.qk_rope_head_dim, b.qk_rope_head_dim);
  EXPECT_EQ(a.v_head_dim, b.v_head_dim);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.yarn, b.rope_scaling.yarn);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(a.rope_scaling.beta_fast, b.rope_scaling.beta_fast);
  EXPECT_EQ(a.rope_scaling.beta_slow, b.rope_scaling.beta_slow);
  EXPECT_EQ(a.rope_scaling.mscale, b.rope_scaling.mscale);
  EXPECT_EQ(a.rope_scaling.mscale_all_dim, b.rope_scaling.mscale_all_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  ASSERT_EQ(a.quantization.has_value(), b.quantization.has_value());
  if (a.quantization) {
    EXPECT_EQ(a.quantization->fp8, b.quantization->fp8);
    EXPECT_EQ(a.quantization->fmt, b.quantization->fmt);
    EXPECT_EQ(a.quantization->activation_scheme, b.quantization->activation_scheme);
    EXPECT_EQ(a.quantization->block_rows, b.quantization->block_rows);
    EXPECT_EQ(a.quantization->block_cols, b.quantization->block_cols);
    EXPECT_EQ(a.quantization->scale_fmt, b.quantization->scale_fmt);
  }
}

// ---- The published configs -----------------------------------------------------------------

TEST(ConfigParse, DeepSeekV3EveryField) {
  const model::ModelConfig c = parse_v3();
  EXPECT_EQ(c.model_type, "deepseek_v3");
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.intermediate_size, 18432);
  EXPECT_EQ(c.moe_intermediate_size, 2048);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_EQ(c.num_attention_heads, 128);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.topk_method, model::TopkMethod::NoauxTc);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.moe_layer_freq, 1);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.scoring_func, model::ScoringFunc::Sigmoid);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_nope_head_dim, 128);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_TRUE(c.rope_scaling.yarn);
  EXPECT_EQ(c.rope_scaling.factor, 40.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(c.rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(c.rope_scaling.beta_slow, 1.0);
  EXPECT_EQ(c.rope_scaling.mscale, 1.0);
  EXPECT_EQ(c.rope_scaling.mscale_all_dim, 1.0);
  EXPECT_EQ(c.max_position_embeddings, 163840);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  ASSERT_TRUE(c.quantization.has_value());
  EXPECT_TRUE(c.quantization->fp8);
  EXPECT_EQ(c.quantization->fmt, "e4m3");
  EXPECT_EQ(c.quantization->activation_scheme, "dynamic");
  EXPECT_EQ(c.quantization->block_rows, 128);
  EXPECT_EQ(c.quantization->block_cols, 128);
  EXPECT_EQ(c.quantization->scale_fmt, "");

  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.latent_dim(), 576);
  for (int64_t layer = 0; layer < 3; ++layer) EXPECT_FALSE(c.is_moe_layer(layer)) << layer;
  for (int64_t layer = 3; layer <= 61; ++layer) EXPECT_TRUE(c.is_moe_layer(layer)) << layer;
}

TEST(ConfigParse, DeepSeekV3SoftmaxScale) {
  const model::ModelConfig c = parse_v3();
  const double mscale = 0.1 * 1.0 * std::log(40.0) + 1.0;  // yarn_get_mscale(40, mscale_all_dim=1)
  EXPECT_NEAR(mscale, 1.368888, 1e-6);
  EXPECT_NEAR(c.softmax_scale(), std::pow(192.0, -0.5) * mscale * mscale, 1e-12);
  // V3's softmax scale, 0.135234, is this final scale (192^-0.5 * mscale^2).
  EXPECT_NEAR(c.softmax_scale(), 0.135234, 1e-6);
}

TEST(ConfigParse, DeepSeekV3RopeFrequencies) {
  const model::ModelConfig c = parse_v3();
  const int d = 64;
  const double theta = 10000, factor = 40, orig = 4096;
  // The YaRN correction range from its definition (low/high dimensions of the ramp).
  auto dim = [&](double rot) { return d * std::log(orig / (rot * 2 * std::numbers::pi)) / (2 * std::log(theta)); };
  const double low = std::max(std::floor(dim(32)), 0.0), high = std::min(std::ceil(dim(1)), double(d - 1));
  ASSERT_EQ(low, 10.0);
  ASSERT_EQ(high, 23.0);

  const std::vector<double> f = c.rope_frequencies();
  ASSERT_EQ(f.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    SCOPED_TRACE(i);
    const double base = std::pow(theta, -2.0 * i / d);
    if (i <= 10) {
      EXPECT_EQ(f[i], base);  // extrapolated: unchanged
    } else if (i >= 23) {
      EXPECT_EQ(f[i], base / factor);  // interpolated: divided by the factor
    } else {
      const double r = (i - low) / (high - low);
      EXPECT_NEAR(f[i], base * (1 - r) + base / factor * r, 1e-15 * base);
      EXPECT_LT(f[i], base);
      EXPECT_GT(f[i], base / factor);
    }
  }
}

TEST(ConfigParse, RopeWithoutScaling) {
  json j = json::parse(kDeepSeekV3);
  j["rope_scaling"] = nullptr;
  const model::ModelConfig c = model::ModelConfig::parse(j.dump(), "t");
  EXPECT_FALSE(c.rope_scaling.yarn);
  EXPECT_EQ(c.softmax_scale(), 1.0 / std::sqrt(192.0));
  const std::vector<double> f = c.rope_frequencies();
  for (int i = 0; i < 32; ++i) EXPECT_EQ(f[i], std::pow(10000.0, -2.0 * i / 64)) << i;
}

TEST(ConfigParse, DeepSeekV2Lite) {
  const model::ModelConfig c = model::ModelConfig::parse(kDeepSeekV2Lite, "v2lite/config.json");
  EXPECT_EQ(c.model_type, "deepseek_v2");
  EXPECT_EQ(c.vocab_size, 102400);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 10944);
  EXPECT_EQ(c.moe_intermediate_size, 1408);
  EXPECT_EQ(c.num_hidden_layers, 27);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);  // key absent
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.q_lora_rank, 0);  // null: plain q_proj
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_nope_head_dim, 128);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.scoring_func, model::ScoringFunc::Softmax);
  EXPECT_EQ(c.topk_method, model::TopkMethod::Greedy);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
  EXPECT_EQ(c.n_routed_experts, 64);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.first_k_dense_replace, 1);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.routed_scaling_factor, 1.0);
  EXPECT_EQ(c.bos_token_id, 100000);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{100001});
  EXPECT_TRUE(c.rope_scaling.yarn);
  EXPECT_EQ(c.rope_scaling.factor, 40.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(c.rope_scaling.mscale, 0.707);
  EXPECT_EQ(c.rope_scaling.mscale_all_dim, 0.707);
  EXPECT_FALSE(c.quantization.has_value());
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_TRUE(c.is_moe_layer(26));

  const double m = 0.1 * 0.707 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c.softmax_scale(), std::pow(192.0, -0.5) * m * m, 1e-12);
}

TEST(ConfigParse, V31ScaleFmtUe8m0) {
  json j = json::parse(kDeepSeekV3);
  j["quantization_config"]["scale_fmt"] = "ue8m0";
  const model::ModelConfig c = model::ModelConfig::parse(j.dump(2), "v3.1/config.json");
  ASSERT_TRUE(c.quantization.has_value());
  EXPECT_EQ(c.quantization->scale_fmt, "ue8m0");
  EXPECT_TRUE(c.quantization->fp8);

  j["quantization_config"]["scale_fmt"] = "e5m2";
  EXPECT_CONTAINS(error_of([&] { model::ModelConfig::parse(j.dump(), "t"); }), "scale_fmt");
}

TEST(ConfigParse, EosListAndRopeTypeAlias) {
  json j = json::parse(kDeepSeekV3);
  j["eos_token_id"] = {1, 128803};
  j["rope_scaling"].erase("type");
  j["rope_scaling"]["rope_type"] = "yarn";  // newer transformers spelling
  const model::ModelConfig c = model::ModelConfig::parse(j.dump(), "t");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 128803}));
  EXPECT_TRUE(c.rope_scaling.yarn);
}

TEST(ConfigParse, LoadReadsAFileAndNamesAMissingOne) {
  testutil::TempDir dir("config");
  const std::string path = dir / "config.json";
  std::ofstream(path) << kDeepSeekV3;
  expect_same_config(model::ModelConfig::load(path), parse_v3());

  const std::string missing = dir / "nope.json";
  EXPECT_CONTAINS(error_of([&] { model::ModelConfig::load(missing); }), missing);
  // Errors from a loaded file name the file.
  std::ofstream(path) << "{";
  EXPECT_CONTAINS(error_of([&] { model::ModelConfig::load(path); }), path);
}

// ---- Errors --------------------------------------------------------------------------------

// Parses the V3 config after `edit`; expects a dsv3::Error naming the source and `key`.
void expect_error(const std::function<void(json&)>& edit, const std::string& key) {
  json j = json::parse(kDeepSeekV3);
  edit(j);
  const std::string msg = error_of([&] { model::ModelConfig::parse(j.dump(), "my/config.json"); });
  EXPECT_CONTAINS(msg, "my/config.json");
  EXPECT_CONTAINS(msg, key);
}

TEST(ConfigErrors, InvalidJson) {
  const std::string msg = error_of([] { model::ModelConfig::parse("{\"hidden_size\": 7168,", "bad.json"); });
  EXPECT_CONTAINS(msg, "bad.json");
  EXPECT_CONTAINS(msg, "not valid JSON");
}

TEST(ConfigErrors, NotAnObject) {
  for (const char* text : {"[1, 2]", "42", "\"config\"", "null"})
    EXPECT_CONTAINS(error_of([&] { model::ModelConfig::parse(text, "arr.json"); }), "arr.json") << text;
  EXPECT_CONTAINS(error_of([] { model::ModelConfig::parse("[]", "arr.json"); }), "object");
}

TEST(ConfigErrors, MissingHiddenSize) {
  expect_error([](json& j) { j.erase("hidden_size"); }, "hidden_size");
  expect_error([](json& j) { j["hidden_size"] = nullptr; }, "hidden_size");
  expect_error([](json& j) { j.erase("vocab_size"); }, "vocab_size");
  expect_error([](json& j) { j.erase("kv_lora_rank"); }, "kv_lora_rank");
}

TEST(ConfigErrors, WrongType) {
  expect_error([](json& j) { j["hidden_size"] = "7168"; }, "hidden_size");
  expect_error([](json& j) { j["hidden_size"] = 7168.5; }, "hidden_size");
  expect_error([](json& j) { j["norm_topk_prob"] = "true"; }, "norm_topk_prob");
  expect_error([](json& j) { j["routed_scaling_factor"] = "2.5"; }, "routed_scaling_factor");
  expect_error([](json& j) { j["eos_token_id"] = "1"; }, "eos_token_id");
  expect_error([](json& j) { j["hidden_size"] = -7168; }, "hidden_size");
}

TEST(ConfigErrors, UnsupportedModelType) {
  expect_error([](json& j) { j["model_type"] = "llama"; }, "model_type");
}

TEST(ConfigErrors, UnsupportedRopeType) {
  expect_error([](json& j) { j["rope_scaling"]["type"] = "linear"; }, "rope_scaling");
  expect_error([](json& j) { j["rope_scaling"] = "yarn"; }, "rope_scaling");
}

TEST(ConfigErrors, OddRopeHeadDim) {
  expect_error([](json& j) { j["qk_rope_head_dim"] = 63; }, "qk_rope_head_dim");
}

TEST(ConfigErrors, MoreExpertsPerTokenThanExperts) {
  expect_error([](json& j) { j["num_experts_per_tok"] = 257; }, "num_experts_per_tok");
}

TEST(ConfigErrors, ExpertsNotAMultipleOfGroups) {
  expect_error([](json& j) { j["n_routed_experts"] = 250; }, "n_group");
  expect_error([](json& j) { j["n_routed_experts"] = 250; }, "n_routed_experts");
}

TEST(ConfigErrors, TopkGroupAboveGroupCount) {
  expect_error([](json& j) { j["topk_group"] = 9; }, "topk_group");
  expect_error([](json& j) { j["topk_group"] = 0; }, "topk_group");
}

TEST(ConfigErrors, GroupsTooSmallForK) {
  // 16 experts in 8 groups of 2; 2 kept groups hold only 4 experts, not 8.
  expect_error([](json& j) {
    j["n_routed_experts"] = 16;
    j["topk_group"] = 2;
  }, "num_experts_per_tok");
}

TEST(ConfigErrors, NoauxTcNeedsSigmoid) {
  expect_error([](json& j) { j["scoring_func"] = "softmax"; }, "noaux_tc");
  expect_error([](json& j) { j["scoring_func"] = "softmax"; }, "scoring_func");
  expect_error([](json& j) { j["scoring_func"] = "tanh"; }, "scoring_func");
  expect_error([](json& j) { j["topk_method"] = "top1"; }, "topk_method");
}

TEST(ConfigErrors, UnsupportedHiddenAct) {
  expect_error([](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act");
}

TEST(ConfigErrors, QuantMethodNotFp8) {
  expect_error([](json& j) { j["quantization_config"]["quant_method"] = "bitsandbytes"; }, "quant_method");
  expect_error([](json& j) { j["quantization_config"].erase("quant_method"); }, "quant_method");
  expect_error([](json& j) { j["quantization_config"]["fmt"] = "e5m2"; }, "fmt");
}

TEST(ConfigErrors, BadWeightBlockSize) {
  expect_error([](json& j) { j["quantization_config"]["weight_block_size"] = {128}; }, "weight_block_size");
  expect_error([](json& j) { j["quantization_config"]["weight_block_size"] = {128, 128, 1}; }, "weight_block_size");
  expect_error([](json& j) { j["quantization_config"]["weight_block_size"] = "128"; }, "weight_block_size");
  expect_error([](json& j) { j["quantization_config"]["weight_block_size"] = {0, 128}; }, "weight_block_size");
  expect_error([](json& j) { j["quantization_config"]["weight_block_size"] = {128, -1}; }, "weight_block_size");
}

TEST(ConfigErrors, EosOutOfRange) {
  expect_error([](json& j) { j["eos_token_id"] = 129280; }, "eos_token_id");
  expect_error([](json& j) { j["eos_token_id"] = {1, -1}; }, "eos_token_id");
  expect_error([](json& j) { j["bos_token_id"] = 129280; }, "bos_token_id");
}

// ---- to_json round trip --------------------------------------------------------------------

TEST(ConfigRoundTrip, PublishedConfigs) {
  json v31 = json::parse(kDeepSeekV3);
  v31["quantization_config"]["scale_fmt"] = "ue8m0";
  for (const std::string& text : {std::string(kDeepSeekV3), std::string(kDeepSeekV2Lite), v31.dump()}) {
    const model::ModelConfig a = model::ModelConfig::parse(text, "original");
    SCOPED_TRACE(a.model_type);
    const std::string out = a.to_json();
    const model::ModelConfig b = model::ModelConfig::parse(out, "to_json output");
    expect_same_config(a, b);
    EXPECT_EQ(b.to_json(), out);  // a fixed point
  }
}

// Every field set to a non-default value, including ones the published configs leave alone.
TEST(ConfigRoundTrip, EveryFieldNonDefault) {
  model::ModelConfig c;
  c.model_type = "deepseek_v2";
  c.vocab_size = 1234;
  c.hidden_size = 200;
  c.intermediate_size = 300;
  c.moe_intermediate_size = 72;
  c.num_hidden_layers = 5;
  c.num_nextn_predict_layers = 1;
  c.num_attention_heads = 3;
  c.n_shared_experts = 2;
  c.n_routed_experts = 12;
  c.routed_scaling_factor = 16.0 / 3.0;  // not exactly representable in decimal
  c.topk_method = model::TopkMethod::GroupLimitedGreedy;
  c.n_group = 4;
  c.topk_group = 3;
  c.num_experts_per_tok = 5;
  c.moe_layer_freq = 2;
  c.first_k_dense_replace = 2;
  c.norm_topk_prob = false;
  c.scoring_func = model::ScoringFunc::Softmax;
  c.q_lora_rank = 96;
  c.kv_lora_rank = 40;
  c.qk_nope_head_dim = 24;
  c.qk_rope_head_dim = 10;
  c.v_head_dim = 20;
  c.rms_norm_eps = 1.5e-5;
  c.rope_theta = 50000.5;
  c.rope_scaling = model::RopeScaling{true, 8.0, 2048, 16.0, 2.0, 0.9, 0.8};
  c.max_position_embeddings = 16384;
  c.tie_word_embeddings = true;
  c.bos_token_id = 7;
  c.eos_token_ids = {2, 3};
  c.quantization = model::QuantizationConfig{true, "e4m3", "static", 64, 32, "ue8m0"};
  c.torch_dtype = "float32";
  c.validate("hand-made");
  expect_same_config(c, model::ModelConfig::parse(c.to_json(), "to_json output"));
}

}  // namespace
}  // namespace dsv3
