#include "model/testgen.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/error.h"
#include "base/numeric.h"
#include "base/rng.h"
#include "io/safetensors.h"

namespace dsv3 {
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
    {"bench", "hidden 2048, 4 layers, 16 heads, 64 experts (6 active, 2 shared), vocab 129280, MTP",
     [] {
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
     }},
};

enum class Init { Embedding, Linear, Head, Norm, Gate, Bias };

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  Init init;
  bool quantizable;  // a Linear inside a decoder layer: FP8 in FP8 checkpoints
  std::string seed_name;  // MTP copies share the main tensor's values
};

std::vector<Spec> tensor_specs(const ModelConfig& c) {
  std::vector<Spec> s;
  const int64_t D = c.hidden_size, V = c.vocab_size, H = c.num_attention_heads;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init, bool q = false, std::string seed = "") {
    s.push_back(Spec{name, std::move(shape), init, q, seed.empty() ? name : seed});
  };
  auto mlp = [&](const std::string& p, int64_t inter) {
    add(p + "gate_proj.weight", {inter, D}, Init::Linear, true);
    add(p + "up_proj.weight", {inter, D}, Init::Linear, true);
    add(p + "down_proj.weight", {D, inter}, Init::Linear, true);
  };
  auto layer = [&](int64_t i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {D}, Init::Norm);
    add(p + "post_attention_layernorm.weight", {D}, Init::Norm);
    const std::string a = p + "self_attn.";
    if (c.q_lora_rank > 0) {
      add(a + "q_a_proj.weight", {c.q_lora_rank, D}, Init::Linear, true);
      add(a + "q_a_layernorm.weight", {c.q_lora_rank}, Init::Norm);
      add(a + "q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank}, Init::Linear, true);
    } else {
      add(a + "q_proj.weight", {H * c.qk_head_dim(), D}, Init::Linear, true);
    }
    add(a + "kv_a_proj_with_mqa.weight", {c.latent_dim(), D}, Init::Linear, true);
    add(a + "kv_a_layernorm.weight", {c.kv_lora_rank}, Init::Norm);
    add(a + "kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, Init::Linear, true);
    add(a + "o_proj.weight", {D, H * c.v_head_dim}, Init::Linear, true);
    if (c.is_moe_layer(i)) {
      add(p + "mlp.gate.weight", {c.n_routed_experts, D}, Init::Gate);
      if (c.topk_method == TopkMethod::NoauxTc) add(p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, Init::Bias);
      for (int64_t e = 0; e < c.n_routed_experts; ++e)
        mlp(p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size);
      if (c.n_shared_experts > 0) mlp(p + "mlp.shared_experts.", c.n_shared_experts * c.moe_intermediate_size);
    } else {
      mlp(p + "mlp.", c.intermediate_size);
    }
  };
  add("model.embed_tokens.weight", {V, D}, Init::Embedding);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer(i);
  add("model.norm.weight", {D}, Init::Norm);
  add("lm_head.weight", {V, D}, Init::Head);
  for (int64_t m = 0; m < c.num_nextn_predict_layers; ++m) {
    const int64_t i = c.num_hidden_layers + m;
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "enorm.weight", {D}, Init::Norm);
    add(p + "hnorm.weight", {D}, Init::Norm);
    add(p + "eh_proj.weight", {D, 2 * D}, Init::Linear);
    add(p + "embed_tokens.weight", {V, D}, Init::Embedding, false, "model.embed_tokens.weight");
    add(p + "shared_head.norm.weight", {D}, Init::Norm);
    add(p + "shared_head.head.weight", {V, D}, Init::Head, false, "lm_head.weight");
    layer(i);
  }
  return s;
}

// Values of a tensor, generated from its own seed so tensors can be produced in any order.
void generate(const Spec& s, uint64_t seed, std::vector<float>& out) {
  uint64_t n = 1;
  for (int64_t d : s.shape) n *= uint64_t(d);
  out.resize(n);
  Rng rng(seed ^ hash_name(s.seed_name));
  const int64_t in = s.shape.size() == 2 ? s.shape[1] : 1;
  const float k3 = std::sqrt(3.0f);  // uniform(-a, a) has std a / sqrt(3)
  switch (s.init) {
    case Init::Embedding: for (float& v : out) v = rng.symmetric(k3); break;
    case Init::Linear: for (float& v : out) v = rng.symmetric(k3 / std::sqrt(float(in))); break;
    case Init::Head: for (float& v : out) v = rng.symmetric(2.0f * k3 / std::sqrt(float(in))); break;
    case Init::Gate: for (float& v : out) v = rng.symmetric(2.0f * k3 / std::sqrt(float(in))); break;
    case Init::Norm: for (float& v : out) v = 1.0f + rng.symmetric(0.2f); break;
    case Init::Bias: for (float& v : out) v = rng.symmetric(0.2f); break;  // both signs on purpose
  }
}

// Block amax / 448, the FP8 recipe's scale; an all-zero block gets scale 1.
std::vector<float> block_scales(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t bs) {
  const int64_t sr = (rows + bs - 1) / bs, sc = (cols + bs - 1) / bs;
  std::vector<float> amax(size_t(sr * sc), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float& a = amax[size_t((r / bs) * sc + c / bs)];
      a = std::max(a, std::fabs(w[size_t(r * cols + c)]));
    }
  for (float& a : amax) a = a > 0 ? a / 448.0f : 1.0f;
  return amax;
}

class Progress {
 public:
  Progress(uint64_t total, bool on) : total_(total), on_(on && isatty(STDERR_FILENO)) {}
  void add(uint64_t bytes) {
    done_ += bytes;
    if (!on_) return;
    const int pct = total_ ? int(100.0 * double(done_) / double(total_)) : 100;
    if (pct == last_) return;
    last_ = pct;
    const int bar = pct * 30 / 100;
    std::fprintf(stderr, "\rwriting  [%.*s%*s] %3d%%  %.1f / %.1f MB", bar, "##############################",
                 30 - bar, "", pct, double(done_) / 1e6, double(total_) / 1e6);
    if (done_ >= total_) std::fprintf(stderr, "\n");
  }

 private:
  uint64_t total_, done_ = 0;
  bool on_;
  int last_ = -1;
};

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
  namespace fs = std::filesystem;
  ModelConfig c = test_model_config(o.preset);
  if (o.vocab_size > 0) c.vocab_size = o.vocab_size;
  if (o.bos_token_id >= 0) c.bos_token_id = o.bos_token_id;
  if (o.eos_token_id >= 0) c.eos_token_ids = {o.eos_token_id};
  c.validate("preset " + o.preset);
  const bool fp8 = o.dtype == "fp8";
  if (!fp8 && o.dtype != "bf16" && o.dtype != "f32") fail("--dtype must be fp8, bf16 or f32, got '", o.dtype, "'");
  if (o.shards < 1) fail("--shards must be at least 1");
  if (o.out.empty()) fail("--out is required");
  c.torch_dtype = o.dtype == "f32" ? "float32" : "bfloat16";
  if (fp8) c.quantization = QuantizationConfig{};
  constexpr int64_t kBlock = 128;
  const DType plain = o.dtype == "f32" ? DType::F32 : DType::BF16;

  struct Out {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
    SafetensorsWriter::Filler fill;
  };
  std::vector<Out> outs;
  for (const Spec& s : tensor_specs(c)) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= uint64_t(d);
    const uint64_t seed = o.seed;
    if (s.init == Init::Bias) {  // the gate bias is F32 in published checkpoints
      outs.push_back({s.name, DType::F32, s.shape, n * 4, [s, seed](uint8_t* dst, uint64_t) {
                        std::vector<float> v;
                        generate(s, seed, v);
                        std::memcpy(dst, v.data(), v.size() * 4);
                      }});
    } else if (fp8 && s.quantizable) {
      const int64_t rows = s.shape[0], cols = s.shape[1];
      outs.push_back({s.name, DType::F8_E4M3, s.shape, n, [s, seed, rows, cols](uint8_t* dst, uint64_t) {
                        std::vector<float> v;
                        generate(s, seed, v);
                        const std::vector<float> sc = block_scales(v, rows, cols, kBlock);
                        const int64_t scols = (cols + kBlock - 1) / kBlock;
                        for (int64_t r = 0; r < rows; ++r)
                          for (int64_t col = 0; col < cols; ++col)
                            dst[r * cols + col] =
                                f32_to_e4m3(v[size_t(r * cols + col)] / sc[size_t((r / kBlock) * scols + col / kBlock)]);
                      }});
      const std::vector<int64_t> sshape = {(rows + kBlock - 1) / kBlock, (cols + kBlock - 1) / kBlock};
      outs.push_back({s.name + "_scale_inv", DType::F32, sshape, uint64_t(sshape[0] * sshape[1]) * 4,
                      [s, seed, rows, cols](uint8_t* dst, uint64_t) {
                        std::vector<float> v;
                        generate(s, seed, v);
                        const std::vector<float> sc = block_scales(v, rows, cols, kBlock);
                        std::memcpy(dst, sc.data(), sc.size() * 4);
                      }});
    } else {
      outs.push_back({s.name, plain, s.shape, n * dtype_size(plain), [s, seed, plain](uint8_t* dst, uint64_t) {
                        std::vector<float> v;
                        generate(s, seed, v);
                        if (plain == DType::F32) {
                          std::memcpy(dst, v.data(), v.size() * 4);
                        } else {
                          for (size_t i = 0; i < v.size(); ++i) {
                            const uint16_t h = f32_to_bf16(v[i]);
                            std::memcpy(dst + 2 * i, &h, 2);
                          }
                        }
                      }});
    }
  }

  uint64_t total = 0;
  for (const Out& t : outs) total += t.nbytes;
  fs::create_directories(o.out);
  {
    std::ofstream cfg(fs::path(o.out) / "config.json");
    cfg << c.to_json();
    if (!cfg) fail("cannot write ", (fs::path(o.out) / "config.json").string());
  }
  // Shards of roughly equal size, tensors in declaration order, named as Hugging Face does.
  auto progress = std::make_shared<Progress>(total, o.progress);
  std::map<std::string, std::string> weight_map;
  const int shards = int(std::min<size_t>(size_t(o.shards), outs.size()));
  size_t next = 0;
  uint64_t written = 0;
  for (int k = 0; k < shards; ++k) {
    char fname[64];
    std::snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", k + 1, shards);
    SafetensorsWriter w;
    const uint64_t target = total * uint64_t(k + 1) / uint64_t(shards);
    while (next < outs.size() && (written < target || w.size() == 0 || k == shards - 1) &&
           outs.size() - next > size_t(shards - k - 1)) {
      Out& t = outs[next++];
      auto fill = t.fill;
      w.add(t.name, t.dtype, t.shape, [fill, progress](uint8_t* dst, uint64_t nb) {
        fill(dst, nb);
        progress->add(nb);
      });
      weight_map[t.name] = fname;
      written += t.nbytes;
    }
    w.set_metadata("format", "pt");
    w.write((fs::path(o.out) / fname).string());
  }
  write_safetensors_index((fs::path(o.out) / "model.safetensors.index.json").string(), weight_map, total);
  return total;
}

}  // namespace dsv3
