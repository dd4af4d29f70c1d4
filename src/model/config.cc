#include "model/config.h"

#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3::model {
namespace {

using json = nlohmann::json;

// Typed accessors that name the file and key in every error.
struct Reader {
  const json& j;
  const std::string& source;

  bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }

  int64_t integer(const char* key, std::optional<int64_t> dflt = std::nullopt) const {
    if (!has(key)) {
      if (dflt) return *dflt;
      fail(source, ": missing required key '", key, "'");
    }
    const json& v = j.at(key);
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::fabs(v.get<double>()) < 9e15)
      return int64_t(v.get<double>());
    fail(source, ": key '", key, "' must be an integer, got ", v.dump());
  }
  double number(const char* key, std::optional<double> dflt = std::nullopt) const {
    if (!has(key)) {
      if (dflt) return *dflt;
      fail(source, ": missing required key '", key, "'");
    }
    const json& v = j.at(key);
    if (!v.is_number()) fail(source, ": key '", key, "' must be a number, got ", v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool dflt) const {
    if (!has(key)) return dflt;
    const json& v = j.at(key);
    if (!v.is_boolean()) fail(source, ": key '", key, "' must be true or false, got ", v.dump());
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& dflt) const {
    if (!has(key)) return dflt;
    const json& v = j.at(key);
    if (!v.is_string()) fail(source, ": key '", key, "' must be a string, got ", v.dump());
    return v.get<std::string>();
  }
};

}  // namespace

ModelConfig ModelConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open model config ", path, " (a model folder needs config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

ModelConfig ModelConfig::parse(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(source, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(source, ": expected a JSON object");
  Reader r{j, source};
  ModelConfig c;

  c.model_type = r.string("model_type", "deepseek_v3");
  if (c.model_type != "deepseek_v3" && c.model_type != "deepseek_v2")
    fail(source, ": model_type '", c.model_type,
         "' is not supported (dsv3 runs deepseek_v3 and deepseek_v2 models)");
  const bool v3 = c.model_type == "deepseek_v3";

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_nextn_predict_layers = r.integer("num_nextn_predict_layers", 0);
  c.num_attention_heads = r.integer("num_attention_heads");
  c.n_routed_experts = r.integer("n_routed_experts", 0);
  c.n_shared_experts = r.integer("n_shared_experts", 0);
  c.moe_intermediate_size = r.integer("moe_intermediate_size", c.n_routed_experts ? std::nullopt : std::optional<int64_t>(0));
  c.routed_scaling_factor = r.number("routed_scaling_factor", 1.0);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", c.n_routed_experts ? std::nullopt : std::optional<int64_t>(0));
  c.n_group = r.integer("n_group", 1);
  c.topk_group = r.integer("topk_group", 1);
  c.moe_layer_freq = r.integer("moe_layer_freq", 1);
  c.first_k_dense_replace = r.integer("first_k_dense_replace", 0);
  c.norm_topk_prob = r.boolean("norm_topk_prob", v3);

  const std::string scoring = r.string("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "sigmoid") c.scoring_func = ScoringFunc::Sigmoid;
  else if (scoring == "softmax") c.scoring_func = ScoringFunc::Softmax;
  else fail(source, ": scoring_func '", scoring, "' is not supported (sigmoid or softmax)");

  const std::string topk = r.string("topk_method", v3 ? "noaux_tc" : "greedy");
  if (topk == "noaux_tc") c.topk_method = TopkMethod::NoauxTc;
  else if (topk == "greedy") c.topk_method = TopkMethod::Greedy;
  else if (topk == "group_limited_greedy") c.topk_method = TopkMethod::GroupLimitedGreedy;
  else fail(source, ": topk_method '", topk, "' is not supported (noaux_tc, greedy or group_limited_greedy)");

  c.q_lora_rank = r.integer("q_lora_rank", 0);
  c.kv_lora_rank = r.integer("kv_lora_rank");
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  c.v_head_dim = r.integer("v_head_dim");
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 10000.0);
  c.max_position_embeddings = r.integer("max_position_embeddings", 4096);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.bos_token_id = r.integer("bos_token_id", 0);
  c.torch_dtype = r.string("torch_dtype", "bfloat16");
  if (r.has("eos_token_id")) {
    const json& e = j.at("eos_token_id");
    if (e.is_number_integer()) c.eos_token_ids = {e.get<int64_t>()};
    else if (e.is_array() && std::all_of(e.begin(), e.end(), [](const json& x) { return x.is_number_integer(); }))
      for (const json& x : e) c.eos_token_ids.push_back(x.get<int64_t>());
    else fail(source, ": eos_token_id must be an integer or a list of integers, got ", e.dump());
  }

  const std::string act = r.string("hidden_act", "silu");
  if (act != "silu") fail(source, ": hidden_act '", act, "' is not supported (DeepSeek models use silu)");
  if (r.boolean("attention_bias", false))
    fail(source, ": attention_bias true is not supported (DeepSeek attention has no biases)");

  if (r.has("rope_scaling")) {
    const json& rs = j.at("rope_scaling");
    if (!rs.is_object()) fail(source, ": rope_scaling must be an object or null");
    Reader rr{rs, source};
    std::string type = rr.string("type", "");
    if (type.empty()) type = rr.string("rope_type", "");
    if (type == "yarn") {
      RopeScaling& y = c.rope_scaling;
      y.yarn = true;
      y.factor = rr.number("factor");
      y.original_max_position_embeddings = rr.integer("original_max_position_embeddings");
      y.beta_fast = rr.number("beta_fast", 32.0);
      y.beta_slow = rr.number("beta_slow", 1.0);
      y.mscale = rr.number("mscale", 1.0);
      y.mscale_all_dim = rr.number("mscale_all_dim", 0.0);
    } else if (type != "default" && type != "") {
      fail(source, ": rope_scaling type '", type, "' is not supported (DeepSeek-V3 uses yarn)");
    }
  }

  if (r.has("quantization_config")) {
    const json& qj = j.at("quantization_config");
    if (!qj.is_object()) fail(source, ": quantization_config must be an object");
    Reader qr{qj, source};
    QuantizationConfig q;
    const std::string method = qr.string("quant_method", "");
    if (method != "fp8")
      fail(source, ": quantization_config.quant_method '", method, "' is not supported (only fp8 block scaling)");
    q.fp8 = true;
    q.fmt = qr.string("fmt", "e4m3");
    if (q.fmt != "e4m3") fail(source, ": quantization_config.fmt '", q.fmt, "' is not supported (e4m3)");
    q.activation_scheme = qr.string("activation_scheme", "dynamic");
    q.scale_fmt = qr.string("scale_fmt", "");
    if (!q.scale_fmt.empty() && q.scale_fmt != "ue8m0")
      fail(source, ": quantization_config.scale_fmt '", q.scale_fmt, "' is not supported (ue8m0)");
    if (qr.has("weight_block_size")) {
      const json& b = qj.at("weight_block_size");
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer())
        fail(source, ": quantization_config.weight_block_size must be [rows, cols], got ", b.dump());
      q.block_rows = b[0].get<int64_t>();
      q.block_cols = b[1].get<int64_t>();
    }
    c.quantization = q;
  }
  c.validate(source);
  return c;
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(source, ": ", key, " must be positive, got ", v);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("kv_lora_rank", kv_lora_rank);
  positive("qk_nope_head_dim", qk_nope_head_dim);
  positive("qk_rope_head_dim", qk_rope_head_dim);
  positive("v_head_dim", v_head_dim);
  if (q_lora_rank < 0) fail(source, ": q_lora_rank must be positive or null, got ", q_lora_rank);
  if (qk_rope_head_dim % 2) fail(source, ": qk_rope_head_dim must be even (rotary pairs), got ", qk_rope_head_dim);
  if (num_nextn_predict_layers < 0) fail(source, ": num_nextn_predict_layers must be >= 0");
  if (num_nextn_predict_layers > 1)
    fail(source, ": num_nextn_predict_layers ", num_nextn_predict_layers, " is not supported (depth 1, as DeepSeek-V3)");
  if (first_k_dense_replace < 0) fail(source, ": first_k_dense_replace must be >= 0");
  if (moe_layer_freq <= 0) fail(source, ": moe_layer_freq must be positive");
  const bool any_dense = first_k_dense_replace > 0 || moe_layer_freq > 1 || n_routed_experts == 0;
  if (any_dense) positive("intermediate_size", intermediate_size);
  if (n_routed_experts < 0 || n_shared_experts < 0) fail(source, ": expert counts must be >= 0");
  if (n_routed_experts > 0) {
    positive("moe_intermediate_size", moe_intermediate_size);
    positive("num_experts_per_tok", num_experts_per_tok);
    if (num_experts_per_tok > n_routed_experts)
      fail(source, ": num_experts_per_tok (", num_experts_per_tok, ") exceeds n_routed_experts (", n_routed_experts, ")");
    const bool grouped = topk_method != TopkMethod::Greedy;
    if (grouped) {
      positive("n_group", n_group);
      if (n_routed_experts % n_group)
        fail(source, ": n_routed_experts (", n_routed_experts, ") must be a multiple of n_group (", n_group, ")");
      if (topk_group <= 0 || topk_group > n_group)
        fail(source, ": topk_group (", topk_group, ") must be in [1, n_group=", n_group, "]");
      if (topk_group * (n_routed_experts / n_group) < num_experts_per_tok)
        fail(source, ": topk_group groups of ", n_routed_experts / n_group, " experts cannot hold num_experts_per_tok=",
             num_experts_per_tok, " experts");
      if (topk_method == TopkMethod::NoauxTc && n_routed_experts / n_group < 2)
        fail(source, ": noaux_tc scores groups by their top-2 experts, so groups need at least 2 experts");
    }
    if (topk_method == TopkMethod::NoauxTc && scoring_func != ScoringFunc::Sigmoid)
      fail(source, ": topk_method noaux_tc needs scoring_func sigmoid");
  }
  if (rope_scaling.yarn) {
    if (rope_scaling.factor <= 0) fail(source, ": rope_scaling.factor must be positive");
    if (rope_scaling.original_max_position_embeddings <= 0)
      fail(source, ": rope_scaling.original_max_position_embeddings must be positive");
    if (rope_scaling.beta_fast <= 0 || rope_scaling.beta_slow <= 0)
      fail(source, ": rope_scaling.beta_fast and beta_slow must be positive");
  }
  if (rope_theta <= 1.0) fail(source, ": rope_theta must be > 1, got ", rope_theta);
  if (!(rms_norm_eps > 0)) fail(source, ": rms_norm_eps must be positive");
  if (quantization && (quantization->block_rows <= 0 || quantization->block_cols <= 0))
    fail(source, ": quantization_config.weight_block_size must be positive");
  if (bos_token_id < 0 || bos_token_id >= vocab_size) fail(source, ": bos_token_id out of range");
  for (int64_t e : eos_token_ids)
    if (e < 0 || e >= vocab_size) fail(source, ": eos_token_id ", e, " out of range");
}

double ModelConfig::softmax_scale() const {
  double s = 1.0 / std::sqrt(double(qk_head_dim()));
  if (rope_scaling.yarn && rope_scaling.mscale_all_dim != 0.0 && rope_scaling.factor > 1.0) {
    const double m = 0.1 * rope_scaling.mscale_all_dim * std::log(rope_scaling.factor) + 1.0;
    s *= m * m;
  }
  return s;
}

std::vector<double> ModelConfig::rope_frequencies() const {
  const int64_t d = qk_rope_head_dim;
  std::vector<double> f(size_t(d / 2));
  for (int64_t i = 0; i < d / 2; ++i) f[size_t(i)] = std::pow(rope_theta, -2.0 * double(i) / double(d));
  if (!rope_scaling.yarn) return f;
  const RopeScaling& y = rope_scaling;
  const double orig = double(y.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return double(d) * std::log(orig / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(rope_theta));
  };
  const double low = std::max(std::floor(correction_dim(y.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(y.beta_slow)), double(d - 1));
  if (low == high) high += 0.001;  // avoid a zero-width ramp
  for (int64_t i = 0; i < d / 2; ++i) {
    const double r = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    f[size_t(i)] = f[size_t(i)] * (1.0 - r) + f[size_t(i)] / y.factor * r;
  }
  return f;
}

std::string ModelConfig::to_json() const {
  json j;
  j["architectures"] = {model_type == "deepseek_v3" ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["moe_intermediate_size"] = moe_intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_attention_heads;
  j["n_shared_experts"] = n_shared_experts;
  j["n_routed_experts"] = n_routed_experts;
  j["routed_scaling_factor"] = routed_scaling_factor;
  j["topk_method"] = topk_method == TopkMethod::NoauxTc ? "noaux_tc"
                     : topk_method == TopkMethod::Greedy ? "greedy" : "group_limited_greedy";
  j["n_group"] = n_group;
  j["topk_group"] = topk_group;
  j["num_experts_per_tok"] = num_experts_per_tok;
  j["moe_layer_freq"] = moe_layer_freq;
  j["first_k_dense_replace"] = first_k_dense_replace;
  j["norm_topk_prob"] = norm_topk_prob;
  j["scoring_func"] = scoring_func == ScoringFunc::Sigmoid ? "sigmoid" : "softmax";
  j["q_lora_rank"] = q_lora_rank > 0 ? json(q_lora_rank) : json(nullptr);
  j["kv_lora_rank"] = kv_lora_rank;
  j["qk_nope_head_dim"] = qk_nope_head_dim;
  j["qk_rope_head_dim"] = qk_rope_head_dim;
  j["v_head_dim"] = v_head_dim;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (rope_scaling.yarn) {
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", rope_scaling.factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings},
                         {"beta_fast", rope_scaling.beta_fast},
                         {"beta_slow", rope_scaling.beta_slow},
                         {"mscale", rope_scaling.mscale},
                         {"mscale_all_dim", rope_scaling.mscale_all_dim}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["max_position_embeddings"] = max_position_embeddings;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = false;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_ids.size() == 1 ? json(eos_token_ids[0]) : json(eos_token_ids);
  j["torch_dtype"] = torch_dtype;
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  if (quantization) {
    json q = {{"quant_method", "fp8"},
              {"fmt", quantization->fmt},
              {"activation_scheme", quantization->activation_scheme},
              {"weight_block_size", {quantization->block_rows, quantization->block_cols}}};
    if (!quantization->scale_fmt.empty()) q["scale_fmt"] = quantization->scale_fmt;
    j["quantization_config"] = q;
  }
  return j.dump(2) + "\n";
}

}  // namespace dsv3::model
