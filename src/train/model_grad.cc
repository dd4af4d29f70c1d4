#include "train/model_grad.h"

#include <malloc.h>

#include <algorithm>
#include <filesystem>
#include <tuple>
#include <unordered_map>

#include "base/error.h"
#include "train/block_grad.h"
#include "train/linear_grad.h"
#include "train/loss.h"
#include "train/norm_rope_grad.h"

namespace dsv3::train {

struct TrainModel::Impl {
  explicit Impl(ThreadPool& pool) : ctx(pool) {}
  kernels::Context ctx;  // the pool and the GEMM's packing buffers
  model::ModelConfig cfg;
  std::vector<double> freqs;
  std::vector<Param> params, biases;
  std::unordered_map<std::string, size_t> index;
  // Views of params' buffers: values and gradients per block (main layers, then MTP).
  std::vector<BlockTensors<float>> wv, wg;
  std::vector<const float*> block_bias;  // per block: its gate bias or null
  std::vector<int64_t> moe_slot;         // per block: index into biases / expert_load, or -1

  Param& p(const std::string& name) {
    auto it = index.find(name);
    DSV3_CHECK(it != index.end(), "no parameter ", name);
    return params[it->second];
  }
  float* v(const std::string& name) { return p(name).value.data(); }
  float* g(const std::string& name) { return p(name).grad.data(); }
  bool has_mtp() const { return cfg.num_nextn_predict_layers > 0; }

  void bind();
  void bind_mlp(const std::string& pre, MlpTensors<float>& V, MlpTensors<float>& G);
  StepStats run(const int32_t* tokens, int64_t T, const LossOptions& opts, float grad_scale, bool backward);
};

void TrainModel::Impl::bind_mlp(const std::string& pre, MlpTensors<float>& V, MlpTensors<float>& G) {
  for (auto [name, vp, gp] : {std::tuple{"gate_proj", &V.gate, &G.gate}, std::tuple{"up_proj", &V.up, &G.up},
                              std::tuple{"down_proj", &V.down, &G.down}}) {
    *vp = v(pre + name + ".weight");
    *gp = g(pre + name + ".weight");
  }
}

void TrainModel::Impl::bind() {
  if (cfg.n_routed_experts > 0 && cfg.scoring_func != model::ScoringFunc::Sigmoid)
    fail("training supports sigmoid expert scoring (DeepSeek-V3) only; this model uses softmax scoring (V2)");
  index.clear();
  for (size_t i = 0; i < params.size(); ++i) index[params[i].name] = i;
  const int64_t nblocks = cfg.num_hidden_layers + (has_mtp() ? 1 : 0);
  wv.assign(size_t(nblocks), {});
  wg.assign(size_t(nblocks), {});
  block_bias.assign(size_t(nblocks), nullptr);
  moe_slot.assign(size_t(nblocks), -1);
  int64_t slot = 0;
  for (int64_t b = 0; b < nblocks; ++b) {
    const std::string pre = "model.layers." + std::to_string(b) + ".";
    const bool moe = b < cfg.num_hidden_layers ? cfg.is_moe_layer(b) : cfg.n_routed_experts > 0;
    auto& V = wv[size_t(b)];
    auto& G = wg[size_t(b)];
    V.moe = G.moe = moe;
    auto both = [&](const std::string& name, float*& vp, float*& gp) {
      vp = v(pre + name);
      gp = g(pre + name);
    };
    both("input_layernorm.weight", V.attn_norm, G.attn_norm);
    both("post_attention_layernorm.weight", V.mlp_norm, G.mlp_norm);
    if (cfg.q_lora_rank > 0) {
      both("self_attn.q_a_proj.weight", V.attn.q_a, G.attn.q_a);
      both("self_attn.q_a_layernorm.weight", V.attn.q_a_norm, G.attn.q_a_norm);
      both("self_attn.q_b_proj.weight", V.attn.q_b, G.attn.q_b);
    } else {
      both("self_attn.q_proj.weight", V.attn.q, G.attn.q);
    }
    both("self_attn.kv_a_proj_with_mqa.weight", V.attn.kv_a, G.attn.kv_a);
    both("self_attn.kv_a_layernorm.weight", V.attn.kv_a_norm, G.attn.kv_a_norm);
    both("self_attn.kv_b_proj.weight", V.attn.kv_b, G.attn.kv_b);
    both("self_attn.o_proj.weight", V.attn.o, G.attn.o);
    if (!moe) {
      bind_mlp(pre + "mlp.", V.dense, G.dense);
      continue;
    }
    both("mlp.gate.weight", V.experts.gate, G.experts.gate);
    V.experts.experts.resize(size_t(cfg.n_routed_experts));
    G.experts.experts.resize(size_t(cfg.n_routed_experts));
    for (int64_t e = 0; e < cfg.n_routed_experts; ++e)
      bind_mlp(pre + "mlp.experts." + std::to_string(e) + ".", V.experts.experts[size_t(e)],
               G.experts.experts[size_t(e)]);
    if (cfg.n_shared_experts > 0) bind_mlp(pre + "mlp.shared_experts.", V.experts.shared, G.experts.shared);
    moe_slot[size_t(b)] = slot;
    if (cfg.topk_method == model::TopkMethod::NoauxTc) block_bias[size_t(b)] = biases[size_t(slot)].value.data();
    ++slot;
  }
}

StepStats TrainModel::Impl::run(const int32_t* tokens, int64_t T, const LossOptions& opts, float grad_scale,
                                bool backward) {
  const model::ModelConfig& c = cfg;
  const int64_t D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  const bool mtp = opts.mtp_weight > 0;
  if (T < 2) fail("a training sequence needs at least 2 tokens (got ", T, ")");
  if (mtp && !has_mtp()) fail("an MTP loss weight > 0 needs a model with an MTP layer (num_nextn_predict_layers is 0)");
  if (mtp && T < 3) fail("the MTP loss needs at least 3 tokens (got ", T, ")");
  for (int64_t t = 0; t < T; ++t)
    if (tokens[t] < 0 || tokens[t] >= V)
      fail("token id ", tokens[t], " at position ", t, " is outside the vocabulary [0, ", V, ")");
  const float* embed = v("model.embed_tokens.weight");
  const float* head = v("lm_head.weight");

  StepStats stats;
  stats.tokens = T - 1;
  stats.expert_load.assign(size_t(std::count_if(moe_slot.begin(), moe_slot.end(), [](int64_t s) { return s >= 0; })),
                           std::vector<int64_t>(size_t(c.n_routed_experts), 0));

  // Main model.
  std::vector<float> h(size_t(T * D));
  embedding_forward(tokens, T, embed, D, h.data());
  std::vector<BlockState<float>> st(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l)
    block_forward(ctx, c, wv[size_t(l)], block_bias[size_t(l)], freqs, h.data(), T, st[size_t(l)]);
  std::vector<float> hf(size_t(T * D)), rf(static_cast<size_t>(T));
  rms_norm_forward(h.data(), D, v("model.norm.weight"), T, D, c.rms_norm_eps, hf.data(), rf.data());
  const int64_t N = T - 1;  // rows with a next token
  std::vector<float> logits(size_t(N * V));
  linear_forward(ctx, hf.data(), N, head, V, D, logits.data());
  const double main_scale = double(grad_scale);
  stats.main_ce = cross_entropy(ctx, logits.data(), tokens + 1, N, V, main_scale, backward ? logits.data() : nullptr);
  for (int64_t l = 0; l < L; ++l) {
    const int64_t s = moe_slot[size_t(l)];
    if (s < 0) continue;
    stats.expert_load[size_t(s)] = st[size_t(l)].moe.load;
    stats.balance += moe_balance(c, st[size_t(l)].moe, T);
  }

  // MTP, depth 1: row i (i < T-2) sees h_i after model.norm and token i+1, predicts i+2.
  const int64_t M = T - 2;
  BlockState<float> mst;
  std::vector<float> emb, en, er, hn, hr, cat, m, mf, mr, mlogits;
  const std::string mp = "model.layers." + std::to_string(L) + ".";
  if (mtp) {
    emb.resize(size_t(M * D));
    en.resize(size_t(M * D));
    er.resize(size_t(M));
    hn.resize(size_t(M * D));
    hr.resize(size_t(M));
    embedding_forward(tokens + 1, M, embed, D, emb.data());
    rms_norm_forward(emb.data(), D, v(mp + "enorm.weight"), M, D, c.rms_norm_eps, en.data(), er.data());
    rms_norm_forward(hf.data(), D, v(mp + "hnorm.weight"), M, D, c.rms_norm_eps, hn.data(), hr.data());
    cat.resize(size_t(M * 2 * D));
    for (int64_t t = 0; t < M; ++t) {
      std::copy(&en[size_t(t * D)], &en[size_t((t + 1) * D)], &cat[size_t(t * 2 * D)]);
      std::copy(&hn[size_t(t * D)], &hn[size_t((t + 1) * D)], &cat[size_t(t * 2 * D + D)]);
    }
    m.resize(size_t(M * D));
    linear_forward(ctx, cat.data(), M, v(mp + "eh_proj.weight"), D, 2 * D, m.data());
    block_forward(ctx, c, wv[size_t(L)], block_bias[size_t(L)], freqs, m.data(), M, mst);
    mf.resize(size_t(M * D));
    mr.resize(size_t(M));
    rms_norm_forward(m.data(), D, v(mp + "shared_head.norm.weight"), M, D, c.rms_norm_eps, mf.data(), mr.data());
    mlogits.resize(size_t(M * V));
    linear_forward(ctx, mf.data(), M, head, V, D, mlogits.data());
    stats.mtp_ce = cross_entropy(ctx, mlogits.data(), tokens + 2, M, V, opts.mtp_weight * grad_scale,
                                 backward ? mlogits.data() : nullptr);
    if (moe_slot[size_t(L)] >= 0) stats.expert_load[size_t(moe_slot[size_t(L)])] = mst.moe.load;
  }
  stats.loss = stats.main_ce + opts.mtp_weight * stats.mtp_ce + opts.balance_alpha * stats.balance;
  if (!backward) return stats;

  // Backward. logits / mlogits now hold the scaled d(loss)/d(logits).
  float* g_embed = g("model.embed_tokens.weight");
  float* g_head = g("lm_head.weight");
  std::vector<float> dhf(size_t(T * D), 0.0f);
  linear_backward(ctx, hf.data(), logits.data(), N, head, V, D, dhf.data(), g_head);
  if (mtp) {
    std::vector<float> dmf(size_t(M * D), 0.0f), dm(size_t(M * D), 0.0f);
    linear_backward(ctx, mf.data(), mlogits.data(), M, head, V, D, dmf.data(), g_head);
    rms_norm_backward(m.data(), D, v(mp + "shared_head.norm.weight"), mr.data(), dmf.data(), M, D, dm.data(),
                      g(mp + "shared_head.norm.weight"));
    block_backward(ctx, c, wv[size_t(L)], freqs, M, mst, 0.0, dm.data(), wg[size_t(L)]);
    std::vector<float> dcat(size_t(M * 2 * D), 0.0f);
    linear_backward(ctx, cat.data(), dm.data(), M, v(mp + "eh_proj.weight"), D, 2 * D, dcat.data(),
                    g(mp + "eh_proj.weight"));
    // rms_norm_backward reads dy packed: split dcat into its embedding and hidden halves.
    std::vector<float> den(size_t(M * D)), dhn(size_t(M * D)), demb(size_t(M * D), 0.0f);
    for (int64_t t = 0; t < M; ++t) {
      std::copy(&dcat[size_t(t * 2 * D)], &dcat[size_t(t * 2 * D + D)], &den[size_t(t * D)]);
      std::copy(&dcat[size_t(t * 2 * D + D)], &dcat[size_t((t + 1) * 2 * D)], &dhn[size_t(t * D)]);
    }
    rms_norm_backward(emb.data(), D, v(mp + "enorm.weight"), er.data(), den.data(), M, D, demb.data(),
                      g(mp + "enorm.weight"));
    rms_norm_backward(hf.data(), D, v(mp + "hnorm.weight"), hr.data(), dhn.data(), M, D, dhf.data(),
                      g(mp + "hnorm.weight"));
    embedding_backward(tokens + 1, M, demb.data(), D, g_embed);
  }
  std::vector<float> dh(size_t(T * D), 0.0f);
  rms_norm_backward(h.data(), D, v("model.norm.weight"), rf.data(), dhf.data(), T, D, dh.data(),
                    g("model.norm.weight"));
  const double bal = opts.balance_alpha * double(grad_scale);
  for (int64_t l = L - 1; l >= 0; --l)
    block_backward(ctx, c, wv[size_t(l)], freqs, T, st[size_t(l)], bal, dh.data(), wg[size_t(l)]);
  embedding_backward(tokens, T, dh.data(), D, g_embed);
  return stats;
}

TrainModel::TrainModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  // A step allocates and frees the same multi-MB activation buffers every time. glibc would
  // serve each from a fresh mmap (page faults and zeroing on every step, ~40% of the time
  // at T=256); keeping freed memory in the heap lets the next step reuse it.
  static const bool once = [] {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)once;
}
TrainModel::TrainModel(TrainModel&&) noexcept = default;
TrainModel& TrainModel::operator=(TrainModel&&) noexcept = default;
TrainModel::~TrainModel() = default;

TrainModel TrainModel::init(const model::ModelConfig& cfg, uint64_t seed, double init_std, ThreadPool& pool) {
  auto impl = std::make_unique<Impl>(pool);
  cfg.validate("training config");
  impl->cfg = cfg;
  impl->freqs = cfg.rope_frequencies();
  impl->params = list_params(cfg, &impl->biases);
  for (Param& p : impl->params) {
    init_param(p, seed, init_std);
    p.grad.assign(p.value.size(), 0.0f);
  }
  for (Param& p : impl->biases) init_param(p, seed, init_std);
  impl->bind();
  return TrainModel(std::move(impl));
}

TrainModel TrainModel::from_checkpoint(const std::string& dir, ThreadPool& pool) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail("model folder ", dir, " does not exist or is not a folder");
  auto impl = std::make_unique<Impl>(pool);
  impl->cfg = model::ModelConfig::load((fs::path(dir) / "config.json").string());
  impl->freqs = impl->cfg.rope_frequencies();
  const io::Checkpoint ck = io::Checkpoint::open(dir);
  impl->params = list_params(impl->cfg, &impl->biases);
  for (Param& p : impl->params) {
    load_param(ck, impl->cfg, p);
    p.grad.assign(p.value.size(), 0.0f);
  }
  for (Param& p : impl->biases) load_param(ck, impl->cfg, p);
  impl->bind();
  return TrainModel(std::move(impl));
}

const model::ModelConfig& TrainModel::config() const { return impl_->cfg; }
std::vector<Param>& TrainModel::params() { return impl_->params; }
const std::vector<Param>& TrainModel::params() const { return impl_->params; }

std::vector<float>& TrainModel::gate_bias(int64_t i) {
  if (i < 0 || i >= int64_t(impl_->biases.size()))
    fail("MoE layer index ", i, " is out of range (the model has ", impl_->biases.size(), " gate biases)");
  return impl_->biases[size_t(i)].value;
}

int64_t TrainModel::num_moe_layers() const {
  return std::count_if(impl_->moe_slot.begin(), impl_->moe_slot.end(), [](int64_t s) { return s >= 0; });
}

StepStats TrainModel::loss_and_grad(const int32_t* tokens, int64_t T, const LossOptions& opts, float grad_scale) {
  return impl_->run(tokens, T, opts, grad_scale, true);
}

StepStats TrainModel::loss_only(const int32_t* tokens, int64_t T, const LossOptions& opts) {
  return impl_->run(tokens, T, opts, 1.0f, false);
}

void TrainModel::zero_grad() {
  for (Param& p : impl_->params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

std::vector<std::pair<std::string, const Param*>> TrainModel::checkpoint_tensors() const {
  const Impl& m = *impl_;
  std::vector<std::pair<std::string, const Param*>> out;
  size_t next_bias = 0;
  const Param* embed = &m.params[m.index.at("model.embed_tokens.weight")];
  const Param* head = &m.params[m.index.at("lm_head.weight")];
  const std::string mtp_prefix = "model.layers." + std::to_string(m.cfg.num_hidden_layers) + ".";
  for (const Param& p : m.params) {
    if (p.name == mtp_prefix + "enorm.weight") {  // the MTP layer's tied copies come first
      out.push_back({mtp_prefix + "embed_tokens.weight", embed});
      out.push_back({mtp_prefix + "shared_head.head.weight", head});
    }
    out.push_back({p.name, &p});
    // Each gate bias follows its gate weight.
    const std::string suffix = "mlp.gate.weight";
    if (next_bias < m.biases.size() && p.name.size() > suffix.size() &&
        p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      DSV3_CHECK(m.biases[next_bias].name == p.name.substr(0, p.name.size() - 6) + "e_score_correction_bias");
      out.push_back({m.biases[next_bias].name, &m.biases[next_bias]});
      ++next_bias;
    }
  }
  DSV3_CHECK(next_bias == m.biases.size());
  return out;
}

}  // namespace dsv3::train
