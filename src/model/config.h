// The model configuration, read from a Hugging Face `config.json` of the DeepSeek-V3 /
// DeepSeek-V2 family. Feature switches come from these keys (and from which tensors
// exist), never from magic sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dsv3::model {

enum class ScoringFunc { Sigmoid, Softmax };
enum class TopkMethod { NoauxTc, Greedy, GroupLimitedGreedy };

struct RopeScaling {
  bool yarn = false;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

struct QuantizationConfig {
  bool fp8 = false;                 // quant_method "fp8"
  std::string fmt = "e4m3";
  std::string activation_scheme = "dynamic";
  int64_t block_rows = 128, block_cols = 128;  // weight_block_size
  std::string scale_fmt;            // "" or "ue8m0" (V3.1: power-of-two scales)
};

struct ModelConfig {
  std::string model_type = "deepseek_v3";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_nextn_predict_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t n_shared_experts = 0;
  int64_t n_routed_experts = 0;     // 0: no MoE at all (dense model)
  double routed_scaling_factor = 1.0;
  TopkMethod topk_method = TopkMethod::NoauxTc;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  int64_t num_experts_per_tok = 0;
  int64_t moe_layer_freq = 1;
  int64_t first_k_dense_replace = 0;
  bool norm_topk_prob = true;
  ScoringFunc scoring_func = ScoringFunc::Sigmoid;
  int64_t q_lora_rank = 0;          // 0: plain q_proj (config null)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 0;
  std::vector<int64_t> eos_token_ids;
  std::optional<QuantizationConfig> quantization;
  std::string torch_dtype = "bfloat16";

  //! Loads and validates `path` (a config.json). Errors name the file and the key.
  static ModelConfig load(const std::string& path);
  //! Parses JSON text; `source` names it in error messages.
  static ModelConfig parse(const std::string& json_text, const std::string& source);
  //! Throws dsv3::Error explaining the first inconsistent or unsupported setting.
  void validate(const std::string& source) const;
  //! The config as Hugging Face writes it (for generated and trained checkpoints).
  std::string to_json() const;

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int64_t latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }  // cached per token
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  //! Softmax scale including YaRN's mscale correction.
  double softmax_scale() const;
  //! Rotary frequencies f_i for i < qk_rope_head_dim/2, YaRN-corrected when enabled.
  std::vector<double> rope_frequencies() const;
};

}  // namespace dsv3::model
