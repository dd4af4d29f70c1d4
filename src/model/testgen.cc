#include "model/testgen.h"

#include <cmath>

#include "base/error.h"
#include "base/rng.h"
#include "model/hf_writer.h"
#include "model/tensor_table.h"

namespace dsv3::model {
namespace {

struct Preset {
  const char* name;
  const char* about;
  ModelConfig (*make)();
};

ModelConfig base_v3() {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 1000;
  c.hidden_size = 200;  // not a multiple of 128: FP8 edge blocks are partial
  c.intermediate_size = 300;
  c.moe_intermediate_size = 72;
  c.num_hidden_layers = 3;
  c.num_nextn_predict_layers = 1;
  c.num_attention_heads = 4;
  c.n_shared_experts = 1;
  c.n_routed_experts = 16;
  c.routed_scaling_factor = 2.5;
  c.topk_method = TopkMethod::NoauxTc;
  c.n_group = 4;
  c.topk_group = 2;
  c.num_experts_per_tok = 4;
  c.first_k_dense_replace = 1;
  c.norm_topk_prob = true;
  c.scoring_func = ScoringFunc::Sigmoid;
  c.q_lora_rank = 136;
  c.kv_lora_rank = 160;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 24;
  c.rope_scaling = RopeScaling{true, 40.0, 64, 32.0, 1.0, 1.0, 1.0};  // short original window
  c.max_position_embeddings = 2560;
  c.eos_token_ids = {1};
  c.quantization = std::nullopt;
  return c;
}

ModelConfig bench_shape() {
  ModelConfig c = base_v3();
  c.vocab_size = 129280;
  c.hidden_size = 2048;
  c.intermediate_size = 10944;
  c.moe_intermediate_size = 1408;
  c.num_hidden_layers = 4;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 16;
  c.n_shared_experts = 2;
  c.n_routed_experts = 64;
  c.num_experts_per_tok = 6;
  c.n_group = 8;
  c.topk_group = 4;
  c.q_lora_rank = 768;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.rope_scaling = RopeScaling{true, 40.0, 4096, 32.0, 1.0, 1.0, 1.0};
  c.max_position_embeddings = 163840;
  return c;
}

const Preset kPresets[] = {
    {"tiny", "V3 layout, odd sizes (hidden 200), 3 layers, 16 experts, q-LoRA, MTP; ~3 MB", base_v3},
    {"tiny-noq", "as tiny with q_lora_rank null (plain q_proj, as V2-Lite)",
     [] {
       ModelConfig c = base_v3();
       c.q_lora_rank = 0;
       return c;
     }},
    {"tiny-v2", "DeepSeek-V2 style: softmax scoring, group_limited_greedy, no MTP, no q-LoRA",
     [] {
       ModelConfig c = base_v3();
       c.model_type = "deepseek_v2";
       c.scoring_func = ScoringFunc::Softmax;
       c.topk_method = TopkMethod::GroupLimitedGreedy;
       c.norm_topk_prob = false;
       c.routed_scaling_factor = 4.0;
       c.num_nextn_predict_layers = 0;
       c.q_lora_rank = 0;
       c.n_shared_experts = 2;
       c.rope_scaling = RopeScaling{true, 40.0, 64, 32.0, 1.0, 0.707, 0.707};
       return c;
     }},
    {"tiny-v2-lite", "DeepSeek-V2-Lite style: softmax scoring, greedy top-k, normalized weights",
     [] {
       ModelConfig c = base_v3();
       c.model_type = "deepseek_v2";
       c.scoring_func = ScoringFunc::Softmax;
       c.topk_method = TopkMethod::Greedy;
       c.n_group = 1;
       c.topk_group = 1;
       c.norm_topk_prob = true;
       c.routed_scaling_factor = 1.0;
       c.num_nextn_predict_layers = 0;
       c.q_lora_rank = 0;
       return c;
     }},
    {"small", "hidden 512, 4 layers, 32 experts (6 active, 2 shared), vocab 8000, MTP; ~70 MB in BF16",
     [] {
       ModelConfig c = base_v3();
       c.vocab_size = 8000;
       c.hidden_size = 512;
       c.intermediate_size = 1024;
       c.moe_intermediate_size = 256;
       c.num_hidden_layers = 4;
       c.num_attention_heads = 8;
       c.n_shared_experts = 2;
       c.n_routed_experts = 32;
       c.num_experts_per_tok = 6;
       c.n_group = 8;
       c.topk_group = 4;
       c.q_lora_rank = 384;
       c.kv_lora_rank = 256;
       c.qk_nope_head_dim = 64;
       c.qk_rope_head_dim = 32;
       c.v_head_dim = 64;
       c.rope_scaling = RopeScaling{true, 40.0, 4096, 32.0, 1.0, 1.0, 1.0};
       c.max_position_embeddings = 163840;
       return c;
     }},
    {"bench", "hidden 2048, 4 layers, 16 heads, 64 experts (6 active, 2 shared), vocab 129280, MTP", bench_shape},
    {"bench-moe", "V3's routing shape (256 experts, 8 active, 8 groups keep 4, 1 shared) at bench's size, vocab "
                  "16000: routed experts ~90% of the bytes, as in V3 (expert-parallel runs)",
     [] {
       ModelConfig c = bench_shape();
       c.vocab_size = 16000;
       c.moe_intermediate_size = 512;
       c.n_shared_experts = 1;
       c.n_routed_experts = 256;
       c.num_experts_per_tok = 8;
       return c;
     }},
};

// Values of a tensor, generated from its own seed so tensors can be produced in any order;
// tied MTP copies use the seed of the tensor they copy, so they hold the same values.
void generate(const TensorSpec& s, uint64_t seed, std::vector<float>& out) {
  out.resize(s.numel());
  Rng rng(seed ^ hash_name(s.source));
  const int64_t in = s.shape.size() == 2 ? s.shape[1] : 1;
  const float k3 = std::sqrt(3.0f);  // uniform(-a, a) has std a / sqrt(3)
  switch (s.role) {
    case TensorRole::Embedding: for (float& v : out) v = rng.symmetric(k3); break;
    case TensorRole::Linear: for (float& v : out) v = rng.symmetric(k3 / std::sqrt(float(in))); break;
    case TensorRole::Head: for (float& v : out) v = rng.symmetric(2.0f * k3 / std::sqrt(float(in))); break;
    case TensorRole::Gate: for (float& v : out) v = rng.symmetric(2.0f * k3 / std::sqrt(float(in))); break;
    case TensorRole::Norm: for (float& v : out) v = 1.0f + rng.symmetric(0.2f); break;
    case TensorRole::Bias: for (float& v : out) v = rng.symmetric(0.2f); break;  // both signs on purpose
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> test_model_presets() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Preset& p : kPresets) out.emplace_back(p.name, p.about);
  return out;
}

ModelConfig test_model_config(const std::string& preset) {
  std::string names;
  for (const Preset& p : kPresets) {
    if (preset == p.name) {
      ModelConfig c = p.make();
      c.validate("preset " + preset);
      return c;
    }
    names += std::string(names.empty() ? "" : ", ") + p.name;
  }
  fail("unknown preset '", preset, "' (choose one of: ", names, ")");
}

uint64_t make_test_model(const TestModelOptions& o) {
  ModelConfig c = test_model_config(o.preset);
  if (o.vocab_size > 0) c.vocab_size = o.vocab_size;
  if (o.bos_token_id >= 0) c.bos_token_id = o.bos_token_id;
  if (o.eos_token_id >= 0) c.eos_token_ids = {o.eos_token_id};
  c.validate("preset " + o.preset);
  if (o.dtype != "fp8" && o.dtype != "bf16" && o.dtype != "f32") fail("--dtype must be fp8, bf16 or f32, got '", o.dtype, "'");
  if (o.shards < 1) fail("--shards must be at least 1");
  if (o.out.empty()) fail("--out is required");
  const uint64_t seed = o.seed;
  return write_hf_checkpoint(o.out, c, tensor_table(c),
                             [seed](const TensorSpec& s, std::vector<float>& v) { generate(s, seed, v); },
                             HfWriteOptions{o.dtype, o.shards, o.progress});
}

}  // namespace dsv3::model
