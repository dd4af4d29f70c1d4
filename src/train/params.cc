#include "train/params.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/numeric.h"
#include "base/rng.h"
#include "kernels/matmul.h"

namespace dsv3::train {
namespace {

void add(std::vector<Param>& out, std::string name, std::vector<int64_t> shape) {
  Param p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  out.push_back(std::move(p));
}

void add_mlp(std::vector<Param>& out, const std::string& p, int64_t D, int64_t I) {
  add(out, p + "gate_proj.weight", {I, D});
  add(out, p + "up_proj.weight", {I, D});
  add(out, p + "down_proj.weight", {D, I});
}

void add_block(std::vector<Param>& out, std::vector<Param>* biases, const model::ModelConfig& c, int64_t layer,
               bool moe) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t D = c.hidden_size, H = c.num_attention_heads;
  add(out, p + "input_layernorm.weight", {D});
  if (c.q_lora_rank > 0) {
    add(out, p + "self_attn.q_a_proj.weight", {c.q_lora_rank, D});
    add(out, p + "self_attn.q_a_layernorm.weight", {c.q_lora_rank});
    add(out, p + "self_attn.q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank});
  } else {
    add(out, p + "self_attn.q_proj.weight", {H * c.qk_head_dim(), D});
  }
  add(out, p + "self_attn.kv_a_proj_with_mqa.weight", {c.latent_dim(), D});
  add(out, p + "self_attn.kv_a_layernorm.weight", {c.kv_lora_rank});
  add(out, p + "self_attn.kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank});
  add(out, p + "self_attn.o_proj.weight", {D, H * c.v_head_dim});
  add(out, p + "post_attention_layernorm.weight", {D});
  if (!moe) {
    add_mlp(out, p + "mlp.", D, c.intermediate_size);
    return;
  }
  add(out, p + "mlp.gate.weight", {c.n_routed_experts, D});
  if (c.topk_method == model::TopkMethod::NoauxTc) add(*biases, p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts});
  for (int64_t e = 0; e < c.n_routed_experts; ++e)
    add_mlp(out, p + "mlp.experts." + std::to_string(e) + ".", D, c.moe_intermediate_size);
  if (c.n_shared_experts > 0) add_mlp(out, p + "mlp.shared_experts.", D, c.n_shared_experts * c.moe_intermediate_size);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

std::vector<Param> list_params(const model::ModelConfig& c, std::vector<Param>* gate_biases) {
  std::vector<Param> out, biases;
  add(out, "model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) add_block(out, &biases, c, i, c.is_moe_layer(i));
  add(out, "model.norm.weight", {c.hidden_size});
  add(out, "lm_head.weight", {c.vocab_size, c.hidden_size});
  if (c.num_nextn_predict_layers > 0) {
    const int64_t n = c.num_hidden_layers;
    const std::string p = "model.layers." + std::to_string(n) + ".";
    add(out, p + "enorm.weight", {c.hidden_size});
    add(out, p + "hnorm.weight", {c.hidden_size});
    add(out, p + "eh_proj.weight", {c.hidden_size, 2 * c.hidden_size});
    add_block(out, &biases, c, n, c.n_routed_experts > 0);
    add(out, p + "shared_head.norm.weight", {c.hidden_size});
  }
  if (gate_biases) *gate_biases = std::move(biases);
  return out;
}

void init_param(Param& p, uint64_t seed, double std) {
  p.value.assign(size_t(p.numel()), 0.0f);
  if (ends_with(p.name, "e_score_correction_bias")) return;
  if (ends_with(p.name, "norm.weight") || ends_with(p.name, "layernorm.weight")) {
    std::fill(p.value.begin(), p.value.end(), 1.0f);
    return;
  }
  Rng rng(seed ^ hash_name(p.name));
  // Box-Muller on two uniforms in (0, 1].
  for (size_t i = 0; i < p.value.size(); i += 2) {
    const double u1 = (double(rng.next() >> 11) + 1.0) * 0x1.0p-53, u2 = double(rng.next() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1)) * std;
    p.value[i] = float(r * std::cos(2 * M_PI * u2));
    if (i + 1 < p.value.size()) p.value[i + 1] = float(r * std::sin(2 * M_PI * u2));
  }
}

void load_param(const io::Checkpoint& ck, const model::ModelConfig& cfg, Param& p) {
  const io::TensorRef* t = ck.find(p.name);
  if (!t) fail("checkpoint is missing tensor '", p.name, "' (expected shape ", shape_str(p.shape), ")");
  if (t->info->shape != p.shape)
    fail(*t->file, ": tensor '", p.name, "' has shape ", shape_str(t->info->shape), ", expected ", shape_str(p.shape),
         " from config.json");
  kernels::WeightMatrix w;
  w.name = p.name;
  w.dtype = t->info->dtype;
  w.data = t->data;
  w.rows = p.shape.size() == 2 ? p.shape[0] : 1;
  w.cols = p.shape.back();
  std::vector<float> scale;
  if (w.dtype == io::DType::F8_E4M3) {
    if (cfg.quantization) {
      w.block_rows = cfg.quantization->block_rows;
      w.block_cols = cfg.quantization->block_cols;
    }
    const int64_t sr = (w.rows + w.block_rows - 1) / w.block_rows;
    w.scale_cols = (w.cols + w.block_cols - 1) / w.block_cols;
    const io::TensorRef* s = ck.find(p.name + "_scale_inv");
    if (!s) fail(*t->file, ": FP8 tensor '", p.name, "' has no block scales '", p.name, "_scale_inv'");
    if (s->info->dtype != io::DType::F32 || s->info->shape != std::vector<int64_t>{sr, w.scale_cols})
      fail(*s->file, ": '", p.name, "_scale_inv' must be F32 ", shape_str({sr, w.scale_cols}));
    scale.resize(size_t(sr * w.scale_cols));
    std::memcpy(scale.data(), s->data, scale.size() * 4);
    w.scale = scale.data();
  } else if (w.dtype != io::DType::F32 && w.dtype != io::DType::BF16 && w.dtype != io::DType::F16) {
    fail(*t->file, ": tensor '", p.name, "' has dtype ", io::dtype_name(w.dtype), "; expected F32, BF16, F16 or F8_E4M3");
  }
  p.value.resize(size_t(p.numel()));
  // Element-wise decoding copes with data at any alignment (hand-made files).
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) {
      if (w.dtype == io::DType::F32) {
        std::memcpy(&p.value[size_t(r * w.cols + c)], static_cast<const uint8_t*>(w.data) + 4 * (r * w.cols + c), 4);
      } else if (w.dtype == io::DType::F8_E4M3) {
        p.value[size_t(r * w.cols + c)] = w.at(r, c);
      } else {
        uint16_t h;
        std::memcpy(&h, static_cast<const uint8_t*>(w.data) + 2 * (r * w.cols + c), 2);
        p.value[size_t(r * w.cols + c)] = w.dtype == io::DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
    }
}

}  // namespace dsv3::train
