#include "model/hf_layout.h"

namespace dsv3::model {

uint64_t HfTensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

std::vector<HfTensorSpec> hf_tensor_specs(const ModelConfig& c) {
  std::vector<HfTensorSpec> s;
  const int64_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
  using R = TensorRole;
  auto add = [&](std::string name, std::vector<int64_t> shape, R role, bool q = false, std::string source = "") {
    s.push_back(HfTensorSpec{name, std::move(shape), role, q, source.empty() ? name : source});
  };
  auto mlp = [&](const std::string& p, int64_t inter) {
    add(p + "gate_proj.weight", {inter, D}, R::Linear, true);
    add(p + "up_proj.weight", {inter, D}, R::Linear, true);
    add(p + "down_proj.weight", {D, inter}, R::Linear, true);
  };
  auto layer = [&](int64_t i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {D}, R::Norm);
    add(p + "post_attention_layernorm.weight", {D}, R::Norm);
    const std::string a = p + "self_attn.";
    if (c.q_lora_rank > 0) {
      add(a + "q_a_proj.weight", {c.q_lora_rank, D}, R::Linear, true);
      add(a + "q_a_layernorm.weight", {c.q_lora_rank}, R::Norm);
      add(a + "q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank}, R::Linear, true);
    } else {
      add(a + "q_proj.weight", {H * c.qk_head_dim(), D}, R::Linear, true);
    }
    add(a + "kv_a_proj_with_mqa.weight", {c.latent_dim(), D}, R::Linear, true);
    add(a + "kv_a_layernorm.weight", {c.kv_lora_rank}, R::Norm);
    add(a + "kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, R::Linear, true);
    add(a + "o_proj.weight", {D, H * c.v_head_dim}, R::Linear, true);
    if (c.is_moe_layer(i)) {
      add(p + "mlp.gate.weight", {c.n_routed_experts, D}, R::Gate);
      if (c.topk_method == TopkMethod::NoauxTc) add(p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, R::Bias);
      for (int64_t e = 0; e < c.n_routed_experts; ++e)
        mlp(p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size);
      if (c.n_shared_experts > 0) mlp(p + "mlp.shared_experts.", c.n_shared_experts * c.moe_intermediate_size);
    } else {
      mlp(p + "mlp.", c.intermediate_size);
    }
  };
  add("model.embed_tokens.weight", {V, D}, R::Embedding);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer(i);
  add("model.norm.weight", {D}, R::Norm);
  add("lm_head.weight", {V, D}, R::Head);
  for (int64_t m = 0; m < c.num_nextn_predict_layers; ++m) {
    const int64_t i = c.num_hidden_layers + m;
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "enorm.weight", {D}, R::Norm);
    add(p + "hnorm.weight", {D}, R::Norm);
    add(p + "eh_proj.weight", {D, 2 * D}, R::Linear);
    add(p + "embed_tokens.weight", {V, D}, R::Embedding, false, "model.embed_tokens.weight");
    add(p + "shared_head.norm.weight", {D}, R::Norm);
    add(p + "shared_head.head.weight", {V, D}, R::Head, false, "lm_head.weight");
    layer(i);
  }
  return s;
}

std::vector<std::string> hf_gate_bias_names(const ModelConfig& c) {
  std::vector<std::string> out;
  for (const HfTensorSpec& s : hf_tensor_specs(c))
    if (s.role == TensorRole::Bias) out.push_back(s.name);
  return out;
}

}  // namespace dsv3::model
