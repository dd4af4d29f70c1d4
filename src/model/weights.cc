#include "model/weights.h"

#include <cstring>

#include "base/error.h"
#include "base/numeric.h"

namespace dsv3::model {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Binds names to tensors, checking each declaration, and remembers what was used.
class Binder {
 public:
  Binder(const ModelConfig& cfg, const io::Checkpoint& ck, ModelWeights& out) : cfg_(cfg), ck_(ck), out_(out) {}

  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }

  const io::TensorRef& require(const std::string& name, const std::vector<int64_t>& shape) {
    const io::TensorRef* t = ck_.find(name);
    if (!t) fail("checkpoint is missing tensor '", name, "' (expected shape ", shape_str(shape), ")");
    if (t->info->shape != shape)
      fail(*t->file, ": tensor '", name, "' has shape ", shape_str(t->info->shape), ", expected ", shape_str(shape),
           " from config.json");
    used_.insert(name);
    return *t;
  }

  // A Linear weight: F32 / BF16 / F16, or F8_E4M3 with its `_scale_inv` block scales.
  kernels::WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols, bool allow_fp8 = true) {
    const io::TensorRef& t = require(name, {rows, cols});
    kernels::WeightMatrix w;
    w.name = name;
    w.dtype = t.info->dtype;
    w.rows = rows;
    w.cols = cols;
    w.data = aligned(t);
    switch (w.dtype) {
      case io::DType::F32: case io::DType::BF16: case io::DType::F16: break;
      case io::DType::F8_E4M3: {
        if (!allow_fp8)
          fail(*t.file, ": tensor '", name, "' is F8_E4M3, but this tensor is never quantized in DeepSeek checkpoints");
        if (cfg_.quantization) {
          w.block_rows = cfg_.quantization->block_rows;
          w.block_cols = cfg_.quantization->block_cols;
        }
        const int64_t sr = (rows + w.block_rows - 1) / w.block_rows;
        w.scale_cols = (cols + w.block_cols - 1) / w.block_cols;
        const std::string sname = name + "_scale_inv";
        if (!has(sname)) fail(*t.file, ": FP8 tensor '", name, "' has no block scales '", sname, "'");
        w.scale = floats(sname, {sr, w.scale_cols}, /*always_copy=*/false);
        break;
      }
      default:
        fail(*t.file, ": tensor '", name, "' has dtype ", io::dtype_name(w.dtype),
             "; weights must be F32, BF16, F16 or F8_E4M3");
    }
    out_.bytes_by_dtype[size_t(w.dtype)] += t.info->nbytes();
    return w;
  }

  // A small vector (norm weight, gate bias) converted to fp32.
  std::vector<float> vector(const std::string& name, int64_t n) {
    const float* p = floats(name, {n}, /*always_copy=*/true);
    std::vector<float> v(p, p + n);
    out_.owned.pop_back();
    return v;
  }

  const std::set<std::string>& used() const { return used_; }

 private:
  // fp32 view of a F32/BF16/F16/F8_E8M0 tensor; F32 is viewed in place when aligned.
  const float* floats(const std::string& name, const std::vector<int64_t>& shape, bool always_copy) {
    const io::TensorRef& t = require(name, shape);
    const uint64_t n = t.info->numel();
    out_.bytes_by_dtype[size_t(t.info->dtype)] += t.info->nbytes();
    if (t.info->dtype == io::DType::F32 && !always_copy && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(t.data);
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) {
      switch (t.info->dtype) {
        case io::DType::F32: std::memcpy(&v[i], t.data + 4 * i, 4); break;
        case io::DType::BF16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); v[i] = bf16_to_f32(h); break; }
        case io::DType::F16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); v[i] = f16_to_f32(h); break; }
        case io::DType::F8_E8M0: v[i] = e8m0_to_f32(t.data[i]); break;
        default: fail(*t.file, ": tensor '", name, "' has dtype ", io::dtype_name(t.info->dtype), ", expected a float type");
      }
    }
    out_.owned.push_back(std::move(v));
    return out_.owned.back().data();
  }

  // mmapped data is used in place unless misaligned for its element type (possible in
  // hand-made files: safetensors does not require alignment), in which case it is copied.
  const void* aligned(const io::TensorRef& t) {
    const size_t a = io::dtype_size(t.info->dtype);
    if (reinterpret_cast<uintptr_t>(t.data) % a == 0) return t.data;
    std::vector<float> v((t.info->nbytes() + 3) / 4);
    std::memcpy(v.data(), t.data, t.info->nbytes());
    out_.owned.push_back(std::move(v));
    return out_.owned.back().data();
  }

  const ModelConfig& cfg_;
  const io::Checkpoint& ck_;
  ModelWeights& out_;
  std::set<std::string> used_;
};

MlpWeights bind_mlp(Binder& b, const std::string& p, int64_t hidden, int64_t inter) {
  MlpWeights m;
  m.gate = b.matrix(p + "gate_proj.weight", inter, hidden);
  m.up = b.matrix(p + "up_proj.weight", inter, hidden);
  m.down = b.matrix(p + "down_proj.weight", hidden, inter);
  return m;
}

LayerWeights bind_layer(Binder& b, const ModelConfig& c, int64_t i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  const int64_t H = c.num_attention_heads, D = c.hidden_size;
  LayerWeights L;
  L.attn_norm = b.vector(p + "input_layernorm.weight", D);
  L.mlp_norm = b.vector(p + "post_attention_layernorm.weight", D);
  AttentionWeights& a = L.attn;
  const std::string ap = p + "self_attn.";
  if (c.q_lora_rank > 0) {
    a.q_a = b.matrix(ap + "q_a_proj.weight", c.q_lora_rank, D);
    a.q_a_norm = b.vector(ap + "q_a_layernorm.weight", c.q_lora_rank);
    a.q_b = b.matrix(ap + "q_b_proj.weight", H * c.qk_head_dim(), c.q_lora_rank);
  } else {
    a.q = b.matrix(ap + "q_proj.weight", H * c.qk_head_dim(), D);
  }
  a.kv_a = b.matrix(ap + "kv_a_proj_with_mqa.weight", c.latent_dim(), D);
  a.kv_a_norm = b.vector(ap + "kv_a_layernorm.weight", c.kv_lora_rank);
  a.kv_b = b.matrix(ap + "kv_b_proj.weight", H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
  a.o = b.matrix(ap + "o_proj.weight", D, H * c.v_head_dim);
  L.moe = c.is_moe_layer(i);
  const std::string mp = p + "mlp.";
  if (L.moe) {
    MoeWeights& m = L.experts;
    m.gate = b.matrix(mp + "gate.weight", c.n_routed_experts, D, /*allow_fp8=*/false);
    if (c.topk_method == TopkMethod::NoauxTc)
      m.bias = b.vector(mp + "gate.e_score_correction_bias", c.n_routed_experts);
    m.experts.reserve(size_t(c.n_routed_experts));
    for (int64_t e = 0; e < c.n_routed_experts; ++e)
      m.experts.push_back(bind_mlp(b, mp + "experts." + std::to_string(e) + ".", D, c.moe_intermediate_size));
    if (c.n_shared_experts > 0)
      m.shared = bind_mlp(b, mp + "shared_experts.", D, c.n_shared_experts * c.moe_intermediate_size);
  } else {
    L.dense = bind_mlp(b, mp, D, c.intermediate_size);
  }
  return L;
}

}  // namespace

ModelWeights ModelWeights::bind(const ModelConfig& c, std::shared_ptr<const io::Checkpoint> ck, bool load_mtp) {
  ModelWeights w;
  w.checkpoint = ck;
  Binder b(c, *ck, w);
  const int64_t D = c.hidden_size, V = c.vocab_size;
  w.embed = b.matrix("model.embed_tokens.weight", V, D, false);
  w.layers.reserve(size_t(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) w.layers.push_back(bind_layer(b, c, i));
  w.final_norm = b.vector("model.norm.weight", D);
  if (c.tie_word_embeddings && !b.has("lm_head.weight")) w.lm_head = w.embed;
  else w.lm_head = b.matrix("lm_head.weight", V, D, false);

  const std::string mtp_prefix = "model.layers." + std::to_string(c.num_hidden_layers) + ".";
  if (load_mtp && c.num_nextn_predict_layers > 0) {
    MtpWeights m;
    m.enorm = b.vector(mtp_prefix + "enorm.weight", D);
    m.hnorm = b.vector(mtp_prefix + "hnorm.weight", D);
    m.eh_proj = b.matrix(mtp_prefix + "eh_proj.weight", D, 2 * D, false);
    // Published checkpoints store copies of the shared embedding and head; re-exports that
    // drop them still work because the model's own are the same parameters.
    m.embed = b.has(mtp_prefix + "embed_tokens.weight") ? b.matrix(mtp_prefix + "embed_tokens.weight", V, D, false) : w.embed;
    m.head = b.has(mtp_prefix + "shared_head.head.weight") ? b.matrix(mtp_prefix + "shared_head.head.weight", V, D, false)
                                                           : w.lm_head;
    m.head_norm = b.vector(mtp_prefix + "shared_head.norm.weight", D);
    m.block = bind_layer(b, c, c.num_hidden_layers);
    w.mtp = std::move(m);
  }
  for (const std::string& name : ck->names()) {
    if (b.used().count(name)) continue;
    if (!load_mtp && name.rfind(mtp_prefix, 0) == 0) continue;
    w.unused.push_back(name);
  }
  return w;
}

}  // namespace dsv3::model
