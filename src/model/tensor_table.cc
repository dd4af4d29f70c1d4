#include "model/tensor_table.h"

namespace dsv3::model {

uint64_t TensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

std::vector<TensorSpec> tensor_table(const ModelConfig& c) {
  std::vector<TensorSpec> s;
  const int64_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
  using R = TensorRole;
  using K = TensorKind;
  // Where the next entries go: the layer (-1: model level) and whether it is the MTP module's.
  int64_t layer = -1;
  bool mtp = false;
  auto add = [&](std::string name, std::vector<int64_t> shape, R role, K kind, bool fp8 = false) -> TensorSpec& {
    TensorSpec t;
    t.source = name;
    t.name = std::move(name);
    t.shape = std::move(shape);
    t.role = role;
    t.fp8_eligible = fp8;
    t.kind = kind;
    t.layer = layer;
    t.mtp = mtp;
    s.push_back(std::move(t));
    return s.back();
  };
  auto mlp = [&](const std::string& p, int64_t inter, MlpOwner owner, int64_t expert = -1) {
    auto proj = [&](const char* name, K kind, std::vector<int64_t> shape) {
      TensorSpec& t = add(p + name + ".weight", std::move(shape), R::Linear, kind, true);
      t.owner = owner;
      t.expert = expert;
    };
    proj("gate_proj", K::MlpGate, {inter, D});
    proj("up_proj", K::MlpUp, {inter, D});
    proj("down_proj", K::MlpDown, {D, inter});
  };
  auto block = [&](int64_t i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {D}, R::Norm, K::AttnNorm);
    add(p + "post_attention_layernorm.weight", {D}, R::Norm, K::MlpNorm);
    const std::string a = p + "self_attn.";
    if (c.q_lora_rank > 0) {
      add(a + "q_a_proj.weight", {c.q_lora_rank, D}, R::Linear, K::QA, true);
      add(a + "q_a_layernorm.weight", {c.q_lora_rank}, R::Norm, K::QANorm);
      add(a + "q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank}, R::Linear, K::QB, true);
    } else {
      add(a + "q_proj.weight", {H * c.qk_head_dim(), D}, R::Linear, K::Q, true);
    }
    add(a + "kv_a_proj_with_mqa.weight", {c.latent_dim(), D}, R::Linear, K::KvA, true);
    add(a + "kv_a_layernorm.weight", {c.kv_lora_rank}, R::Norm, K::KvANorm);
    add(a + "kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, R::Linear, K::KvB, true);
    add(a + "o_proj.weight", {D, H * c.v_head_dim}, R::Linear, K::O, true);
    if (c.is_moe_layer(i)) {
      add(p + "mlp.gate.weight", {c.n_routed_experts, D}, R::Gate, K::RouterGate);
      if (c.topk_method == TopkMethod::NoauxTc)
        add(p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, R::Bias, K::RouterBias);
      for (int64_t e = 0; e < c.n_routed_experts; ++e)
        mlp(p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size, MlpOwner::Expert, e);
      if (c.n_shared_experts > 0)
        mlp(p + "mlp.shared_experts.", c.n_shared_experts * c.moe_intermediate_size, MlpOwner::Shared);
    } else {
      mlp(p + "mlp.", c.intermediate_size, MlpOwner::Dense);
    }
  };
  add("model.embed_tokens.weight", {V, D}, R::Embedding, K::Embed);
  for (layer = 0; layer < c.num_hidden_layers; ++layer) block(layer);
  layer = -1;
  add("model.norm.weight", {D}, R::Norm, K::FinalNorm);
  // Checkpoints of tied-embedding models may leave the head out.
  add("lm_head.weight", {V, D}, R::Head, K::Head).fallback = c.tie_word_embeddings ? "model.embed_tokens.weight" : "";
  mtp = true;
  for (int64_t m = 0; m < c.num_nextn_predict_layers; ++m) {
    layer = c.num_hidden_layers + m;
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    add(p + "enorm.weight", {D}, R::Norm, K::MtpENorm);
    add(p + "hnorm.weight", {D}, R::Norm, K::MtpHNorm);
    add(p + "eh_proj.weight", {D, 2 * D}, R::Linear, K::MtpEhProj);
    // Copies of the shared embedding and head (one parameter each, report §2.2); re-exports
    // that drop them still load, from the main ones.
    TensorSpec& embed = add(p + "embed_tokens.weight", {V, D}, R::Embedding, K::MtpEmbed);
    embed.source = embed.fallback = "model.embed_tokens.weight";
    add(p + "shared_head.norm.weight", {D}, R::Norm, K::MtpHeadNorm);
    TensorSpec& head = add(p + "shared_head.head.weight", {V, D}, R::Head, K::MtpHead);
    head.source = head.fallback = "lm_head.weight";
    block(layer);
  }
  return s;
}

}  // namespace dsv3::model
