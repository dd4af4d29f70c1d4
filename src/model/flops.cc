#include "model/flops.h"

namespace dsv3::model {

double layer_macs(const ModelConfig& c, int64_t i) {
  const double D = double(c.hidden_size), H = double(c.num_attention_heads), R = double(c.kv_lora_rank);
  const double qk = double(c.qk_head_dim()), v = double(c.v_head_dim), nope = double(c.qk_nope_head_dim);
  double attn = c.q_lora_rank ? D * double(c.q_lora_rank) + double(c.q_lora_rank) * H * qk : D * H * qk;
  attn += D * double(c.latent_dim()) + H * (nope + v) * R + H * v * D;
  if (c.is_moe_layer(i))
    return attn + D * double(c.n_routed_experts) +
           3 * D * double(c.moe_intermediate_size) * double(c.num_experts_per_tok + c.n_shared_experts);
  return attn + 3 * D * double(c.intermediate_size);
}

double layer_macs_per_token(const ModelConfig& c) {
  double total = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) total += layer_macs(c, i);
  return total;
}

double attention_macs_per_pair(const ModelConfig& c) {
  return double(c.num_hidden_layers) * double(c.num_attention_heads) * double(c.qk_head_dim() + c.v_head_dim);
}

double head_macs(const ModelConfig& c) { return double(c.vocab_size) * double(c.hidden_size); }

double forward_macs(const ModelConfig& c, int64_t context, int64_t T, bool last_only) {
  // Query t (0-based) attends to context + t + 1 keys.
  const double pairs = double(T) * double(context) + double(T) * double(T + 1) / 2;
  return double(T) * layer_macs_per_token(c) + pairs * attention_macs_per_pair(c) +
         (last_only ? 1.0 : double(T)) * head_macs(c);
}

}  // namespace dsv3::model
