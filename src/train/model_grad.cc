#include "train/model_grad.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>

#include "base/error.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "train/block_grad.h"
#include "train/low_precision.h"
#include "train/loss.h"
#include "train/model_tensors.h"
#include "train/norm_rope_grad.h"
#include "train/params.h"

namespace dsv3::train {
namespace {

// A call's activations and gradient buffers, kept for the next call: allocating them per
// call would free and fetch the same multi-MB buffers every sequence (from the kernel, as
// fresh zeroed pages).
struct Activations {
  std::vector<BlockState<float>> blocks;  // main layers
  std::vector<float> h, hf, rf, logits, dhf, dh;
  BlockState<float> mtp_block;
  std::vector<float> emb, en, er, hn, hr, cat, m, mf, mr, mlogits;
  std::vector<float> dmf, dm, dcat, den, dhn, demb;
  //! What the decoder blocks keep for the backward pass (the MTP block's when the call ran
  //! it: the buffers outlive a call that did not).
  size_t block_bytes(bool mtp) const {
    size_t n = mtp ? mtp_block.bytes() : 0;
    for (const BlockState<float>& b : blocks) n += b.bytes();
    return n;
  }
  //! All the forward pass keeps for the backward pass (the d* buffers are the backward's own).
  size_t bytes(bool mtp) const {
    return block_bytes(mtp) + bytes_of(h, hf, rf, logits) +
           (mtp ? bytes_of(emb, en, er, hn, hr, cat, m, mf, mr, mlogits) : 0);
  }
};

// n values the caller overwrites before reading any.
float* sized(std::vector<float>& v, int64_t n) {
  v.resize(size_t(n));
  return v.data();
}

// n zeros, as a fresh buffer that gradients accumulate into.
float* zeroed(std::vector<float>& v, int64_t n) {
  v.assign(size_t(n), 0.0f);
  return v.data();
}

}  // namespace

struct TrainModel::Impl {
  kernels::Context ctx;                     // the pool and the GEMM's packing buffers
  model::ModelConfig cfg;
  std::vector<double> freqs;
  std::vector<Param> params;                // trainable_specs() order, gate biases left out
  std::vector<Param> biases;                // gate biases, one per noaux_tc MoE layer in block order
  ModelTensors<float> wv, wg;               // views of params' values and gradients
  // precision bf16 / fp8: the decoder blocks' Linear weights in the mode's form (prepared
  // once per step, prepare_weight), wq viewing them (and wv's tensors for the rest).
  ModelTensors<float> wq;
  struct Prepared {
    size_t param;              // index into params
    std::vector<float> value;
  };
  std::vector<Prepared> prepared;
  bool prepared_valid = false;
  std::vector<const float*> block_bias;     // per block (main layers, then MTP): its gate bias or null
  std::vector<int64_t> moe_slot;            // per block: index into biases / expert_load, or -1
  Activations act;

  Impl(ThreadPool& pool, const model::ModelConfig& c,
       const std::function<void(const model::TensorSpec&, std::vector<float>&)>& fill);
  bool has_mtp() const { return cfg.num_nextn_predict_layers > 0; }
  LossTerms run(const int32_t* tokens, int64_t T, const LossWeights& lw, float grad_scale, bool backward);
  //! The weights the blocks compute with: wv in fp32, else wq brought up to date.
  const ModelTensors<float>& compute_weights();
};

const ModelTensors<float>& TrainModel::Impl::compute_weights() {
  if (ctx.numerics() == kernels::Numerics::Fp32) return wv;
  if (!prepared_valid) {
    for (Prepared& p : prepared) {
      const Param& m = params[p.param];
      prepare_weight(ctx, m.value.data(), m.shape.at(0), m.shape.at(1), p.value.data());
    }
    prepared_valid = true;
  }
  return wq;
}

TrainModel::Impl::Impl(ThreadPool& pool, const model::ModelConfig& c,
                       const std::function<void(const model::TensorSpec&, std::vector<float>&)>& fill)
    : ctx(pool), cfg(c), freqs(c.rope_frequencies()) {
  const int64_t nblocks = cfg.num_hidden_layers + (has_mtp() ? 1 : 0);
  block_bias.assign(size_t(nblocks), nullptr);
  for (const model::TensorSpec& s : trainable_specs(cfg)) {
    Param p{s.name, s.shape, {}, {}};
    fill(s, p.value);
    if (s.role == model::TensorRole::Bias) {
      biases.push_back(std::move(p));
      block_bias.at(size_t(s.layer)) = biases.back().value.data();
      continue;
    }
    p.grad.assign(p.value.size(), 0.0f);
    params.push_back(std::move(p));
    // Vector buffers do not move when `params` grows, so the views stay valid.
    Param& q = params.back();
    const bool bound = model::bind_member(s, wv, [&q](float*& m) { m = q.value.data(); }) &&
                       model::bind_member(s, wg, [&q](float*& m) { m = q.grad.data(); });
    DSV3_CHECK(bound, "training has no place for ", s.name);
    // The Linear layers of the decoder blocks (MTP block included), the tensors FP8
    // checkpoints store in FP8: what precision bf16 / fp8 computes with (low_precision.h).
    if (s.fp8_eligible) {
      prepared.push_back(Prepared{params.size() - 1, std::vector<float>(size_t(prepared_size(s.shape.at(0), s.shape.at(1))))});
      std::vector<float>& buf = prepared.back().value;
      model::bind_member(s, wq, [&buf](float*& m) { m = buf.data(); });
    } else {
      model::bind_member(s, wq, [&q](float*& m) { m = q.value.data(); });
    }
  }
  moe_slot.assign(size_t(nblocks), -1);
  int64_t slot = 0;
  for (int64_t b = 0; b < nblocks; ++b)
    if ((b < cfg.num_hidden_layers ? wv.layers.at(size_t(b)) : wv.mtp.block).moe) moe_slot[size_t(b)] = slot++;
}

LossTerms TrainModel::Impl::run(const int32_t* tokens, int64_t T, const LossWeights& lw, float grad_scale,
                                bool backward) {
  const model::ModelConfig& c = cfg;
  const int64_t D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  const bool mtp = lw.mtp_weight > 0;
  if (T < 2) fail("a training sequence needs at least 2 tokens (got ", T, ")");
  if (mtp && !has_mtp()) fail("an MTP loss weight > 0 needs a model with an MTP layer (num_nextn_predict_layers is 0)");
  if (mtp && T < 3) fail("the MTP loss needs at least 3 tokens (got ", T, ")");
  for (int64_t t = 0; t < T; ++t)
    if (tokens[t] < 0 || tokens[t] >= V)
      fail("token id ", tokens[t], " at position ", t, " is outside the vocabulary [0, ", V, ")");
  Activations& a = act;
  const ModelTensors<float>& cw = compute_weights();
  const float* embed = wv.embed;
  const float* head = wv.lm_head;

  LossTerms stats;
  stats.tokens = T - 1;
  stats.counted = lw.target_mask ? std::count_if(lw.target_mask, lw.target_mask + T - 1, [](uint8_t m) { return m != 0; })
                                 : T - 1;
  stats.expert_load.assign(size_t(std::count_if(moe_slot.begin(), moe_slot.end(), [](int64_t s) { return s >= 0; })),
                           std::vector<int64_t>(size_t(c.n_routed_experts), 0));

  // Main model.
  float* h = sized(a.h, T * D);
  embedding_forward(tokens, T, embed, D, h);
  a.blocks.resize(size_t(L));
  for (int64_t l = 0; l < L; ++l)
    block_forward(ctx, c, cw.layers[size_t(l)], block_bias[size_t(l)], freqs, h, T, a.blocks[size_t(l)]);
  float* hf = sized(a.hf, T * D);
  float* rf = sized(a.rf, T);
  rms_norm_forward(h, D, wv.final_norm, T, D, c.rms_norm_eps, hf, rf, &ctx.pool());
  const int64_t N = T - 1;  // rows with a next token
  float* logits = sized(a.logits, N * V);
  outer_linear_forward(ctx, hf, N, head, V, D, logits);
  const double main_scale = double(grad_scale);
  double main_loss = 0;
  if (lw.teacher_logits) {
    const DistillTerms d = distill_cross_entropy(ctx, logits, lw.teacher_logits, tokens + 1, N, V, lw.kd_weight,
                                                 lw.kd_temperature, main_scale, backward ? logits : nullptr, lw.target_mask);
    stats.main_ce = d.ce;
    stats.kd = d.kl;
    main_loss = d.loss;
  } else {
    stats.main_ce =
        cross_entropy(ctx, logits, tokens + 1, N, V, main_scale, backward ? logits : nullptr, lw.target_mask);
    main_loss = stats.main_ce;
  }
  for (int64_t l = 0; l < L; ++l) {
    const int64_t s = moe_slot[size_t(l)];
    if (s < 0) continue;
    stats.expert_load[size_t(s)] = a.blocks[size_t(l)].moe.load;
    stats.balance += moe_balance(c, a.blocks[size_t(l)].moe, T);
  }

  // MTP, depth 1: row i (i < T-2) sees h_i after model.norm and token i+1, predicts i+2.
  const int64_t M = T - 2;
  const MtpTensors<float>& mv = cw.mtp;
  if (mtp) {
    float* emb = sized(a.emb, M * D);
    float* en = sized(a.en, M * D);
    float* er = sized(a.er, M);
    float* hn = sized(a.hn, M * D);
    float* hr = sized(a.hr, M);
    embedding_forward(tokens + 1, M, embed, D, emb);
    rms_norm_forward(emb, D, mv.enorm, M, D, c.rms_norm_eps, en, er, &ctx.pool());
    rms_norm_forward(hf, D, mv.hnorm, M, D, c.rms_norm_eps, hn, hr, &ctx.pool());
    float* cat = sized(a.cat, M * 2 * D);
    for (int64_t t = 0; t < M; ++t) {
      std::copy(en + t * D, en + (t + 1) * D, cat + t * 2 * D);
      std::copy(hn + t * D, hn + (t + 1) * D, cat + t * 2 * D + D);
    }
    float* m = sized(a.m, M * D);
    outer_linear_forward(ctx, cat, M, mv.eh_proj, D, 2 * D, m);
    block_forward(ctx, c, mv.block, block_bias[size_t(L)], freqs, m, M, a.mtp_block);
    float* mf = sized(a.mf, M * D);
    float* mr = sized(a.mr, M);
    rms_norm_forward(m, D, mv.head_norm, M, D, c.rms_norm_eps, mf, mr, &ctx.pool());
    float* mlogits = sized(a.mlogits, M * V);
    outer_linear_forward(ctx, mf, M, head, V, D, mlogits);
    stats.mtp_ce =
        cross_entropy(ctx, mlogits, tokens + 2, M, V, lw.mtp_weight * grad_scale, backward ? mlogits : nullptr,
                      lw.target_mask ? lw.target_mask + 1 : nullptr);
    if (moe_slot[size_t(L)] >= 0) stats.expert_load[size_t(moe_slot[size_t(L)])] = a.mtp_block.moe.load;
  }
  stats.loss = main_loss + lw.mtp_weight * stats.mtp_ce + lw.balance_alpha * stats.balance;
  if (!backward) {
    // The logits are still logits (no gradient was written into them): count argmax hits.
    auto hits = [&](const float* lg, int64_t rows, const int32_t* target, const uint8_t* mask, int64_t& counted) {
      int64_t n = 0;
      counted = 0;
      for (int64_t t = 0; t < rows; ++t) {
        if (mask && !mask[t]) continue;
        ++counted;
        n += std::max_element(lg + t * V, lg + (t + 1) * V) - (lg + t * V) == target[t];
      }
      return n;
    };
    int64_t main_rows = 0;
    stats.main_correct = hits(logits, N, tokens + 1, lw.target_mask, main_rows);
    if (mtp)
      stats.mtp_correct = hits(a.mlogits.data(), M, tokens + 2, lw.target_mask ? lw.target_mask + 1 : nullptr, stats.mtp_tokens);
    return stats;
  }

  // Backward. logits / mlogits now hold the scaled d(loss)/d(logits).
  float* dhf = zeroed(a.dhf, T * D);
  outer_linear_backward(ctx, hf, logits, N, head, V, D, dhf, wg.lm_head);
  if (mtp) {
    const MtpTensors<float>& mg = wg.mtp;
    float* dmf = zeroed(a.dmf, M * D);
    float* dm = zeroed(a.dm, M * D);
    outer_linear_backward(ctx, a.mf.data(), a.mlogits.data(), M, head, V, D, dmf, wg.lm_head);
    rms_norm_backward(a.m.data(), D, mv.head_norm, a.mr.data(), dmf, M, D, dm, mg.head_norm, &ctx.pool());
    block_backward(ctx, c, mv.block, freqs, M, a.mtp_block, 0.0, dm, mg.block);
    float* dcat = zeroed(a.dcat, M * 2 * D);
    outer_linear_backward(ctx, a.cat.data(), dm, M, mv.eh_proj, D, 2 * D, dcat, mg.eh_proj);
    // rms_norm_backward reads dy packed: split dcat into its embedding and hidden halves.
    float* den = sized(a.den, M * D);
    float* dhn = sized(a.dhn, M * D);
    float* demb = zeroed(a.demb, M * D);
    for (int64_t t = 0; t < M; ++t) {
      std::copy(dcat + t * 2 * D, dcat + t * 2 * D + D, den + t * D);
      std::copy(dcat + t * 2 * D + D, dcat + (t + 1) * 2 * D, dhn + t * D);
    }
    rms_norm_backward(a.emb.data(), D, mv.enorm, a.er.data(), den, M, D, demb, mg.enorm, &ctx.pool());
    rms_norm_backward(hf, D, mv.hnorm, a.hr.data(), dhn, M, D, dhf, mg.hnorm, &ctx.pool());
    embedding_backward(tokens + 1, M, demb, D, wg.embed);
  }
  stats.kept_bytes = int64_t(a.bytes(mtp));
  stats.kept_block_bytes = int64_t(a.block_bytes(mtp));
  float* dh = zeroed(a.dh, T * D);
  rms_norm_backward(h, D, wv.final_norm, rf, dhf, T, D, dh, wg.final_norm, &ctx.pool());
  const double bal = lw.balance_alpha * double(grad_scale);
  for (int64_t l = L - 1; l >= 0; --l)
    block_backward(ctx, c, cw.layers[size_t(l)], freqs, T, a.blocks[size_t(l)], bal, dh, wg.layers[size_t(l)]);
  embedding_backward(tokens, T, dh, D, wg.embed);
  return stats;
}

TrainModel::TrainModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrainModel::TrainModel(TrainModel&&) noexcept = default;
TrainModel& TrainModel::operator=(TrainModel&&) noexcept = default;
TrainModel::~TrainModel() = default;

namespace {

void check_trainable(const model::ModelConfig& cfg) {
  if (cfg.n_routed_experts > 0 && cfg.scoring_func != model::ScoringFunc::Sigmoid)
    fail("training supports sigmoid expert scoring (DeepSeek-V3) only; this model uses softmax scoring (V2)");
}

}  // namespace

TrainModel TrainModel::init(const model::ModelConfig& cfg, uint64_t seed, double init_std, ThreadPool& pool) {
  cfg.validate("training config");
  check_trainable(cfg);
  return TrainModel(std::make_unique<Impl>(
      pool, cfg, [&](const model::TensorSpec& s, std::vector<float>& v) { init_values(s, seed, init_std, v); }));
}

TrainModel TrainModel::from_checkpoint(const std::string& dir, ThreadPool& pool) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail("model folder ", dir, " does not exist or is not a folder");
  return from_checkpoint(dir, model::ModelConfig::load((fs::path(dir) / "config.json").string()), pool);
}

TrainModel TrainModel::from_checkpoint(const std::string& dir, const model::ModelConfig& cfg, ThreadPool& pool) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail("model folder ", dir, " does not exist or is not a folder");
  check_trainable(cfg);
  model::ModelWeights w =
      model::ModelWeights::bind(cfg, std::make_shared<const io::Checkpoint>(io::Checkpoint::open(dir)));
  return TrainModel(std::make_unique<Impl>(
      pool, cfg, [&](const model::TensorSpec& s, std::vector<float>& v) { read_values(s, w, v); }));
}

int64_t TrainModel::vocab_size() const { return impl_->cfg.vocab_size; }
const model::ModelConfig* TrainModel::hf_config() const { return &impl_->cfg; }

std::vector<ParamView> TrainModel::params() {
  impl_->prepared_valid = false;  // the caller may write through the views
  std::vector<ParamView> out;
  out.reserve(impl_->params.size());
  for (Param& p : impl_->params) out.push_back(p.view());
  return out;
}

int64_t TrainModel::num_moe_layers() const {
  return std::count_if(impl_->moe_slot.begin(), impl_->moe_slot.end(), [](int64_t s) { return s >= 0; });
}

std::vector<float>& TrainModel::gate_bias(int64_t i) {
  if (i < 0 || i >= int64_t(impl_->biases.size()))
    fail("MoE layer index ", i, " is out of range (the model has ", impl_->biases.size(),
         " gate biases; only noaux_tc routing has them)");
  return impl_->biases[size_t(i)].value;
}

std::string TrainModel::gate_bias_name(int64_t i) const {
  if (i < 0 || i >= int64_t(impl_->biases.size()))
    fail("MoE layer index ", i, " is out of range (the model has ", impl_->biases.size(), " gate biases)");
  return impl_->biases[size_t(i)].name;
}

LossTerms TrainModel::loss_and_grad(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale) {
  return impl_->run(tokens, T, w, grad_scale, true);
}

LossTerms TrainModel::loss_only(const int32_t* tokens, int64_t T, const LossWeights& w) {
  return impl_->run(tokens, T, w, 1.0f, false);
}

void TrainModel::set_precision(kernels::Numerics n) {
  impl_->ctx.set_numerics(n);
  impl_->prepared_valid = false;
}

void TrainModel::weights_changed() { impl_->prepared_valid = false; }
kernels::Numerics TrainModel::precision() const { return impl_->ctx.numerics(); }

void TrainModel::zero_grad() {
  impl_->prepared_valid = false;
  for (Param& p : impl_->params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

}  // namespace dsv3::train
