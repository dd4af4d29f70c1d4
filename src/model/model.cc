#include "model/model.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <utility>

#include "base/error.h"
#include "kernels/matmul.h"
#include "model/ops.h"

namespace dsv3::model {

KvCache::KvCache(int64_t n_layers, int64_t latent_dim, int64_t capacity, LatentType type)
    : n_layers_(n_layers), dim_(latent_dim), capacity_(capacity), type_(type) {
  const size_t n = size_t(n_layers) * size_t(capacity) * size_t(latent_dim);
  if (type == LatentType::F32) data_.resize(n);
  else half_.resize(n);
}

Model Model::load(const std::string& dir, const LoadOptions& opts) {
  namespace fs = std::filesystem;
  if (!fs::exists(dir)) fail("model folder ", dir, " does not exist");
  if (!fs::is_directory(dir)) fail(dir, " is not a folder (a model folder holds config.json and *.safetensors)");
  ModelConfig config = ModelConfig::load((fs::path(dir) / "config.json").string());
  std::function<bool(const TensorSpec&)> want;
  if (opts.experts || opts.experts_only)
    want = [&opts](const TensorSpec& s) {
      if (s.owner == MlpOwner::Expert) return !opts.experts || opts.experts->holds(s.layer, s.expert);
      return !opts.experts_only;
    };
  // Read into memory, only the tensors bound are read (mapped, only those are touched): an
  // expert-parallel rank's share, and no MTP layer when it is not loaded.
  std::set<std::string> skipped;
  if (want || !opts.load_mtp)
    for (const TensorSpec& s : tensor_table(config))
      if ((want && !want(s)) || (s.mtp && !opts.load_mtp)) {
        skipped.insert(s.name);
        skipped.insert(s.name + "_scale_inv");
      }
  const auto skip = [&skipped](const std::string& name) { return skipped.count(name) > 0; };
  auto ck = std::make_shared<const io::Checkpoint>(
      io::Checkpoint::open(dir, opts.memory, skipped.empty() ? std::function<bool(const std::string&)>() : skip));
  ModelWeights w = ModelWeights::bind(config, ck, opts.load_mtp, want);
  Model m(std::move(config), std::move(w));
  m.host_ = opts.experts;
  return m;
}

Model::Model(ModelConfig config, ModelWeights weights) : config_(std::move(config)), weights_(std::move(weights)) {
  rope_freqs_ = config_.rope_frequencies();
}

KvCache Model::new_cache(int64_t capacity, LatentType type) const {
  return KvCache(config_.num_hidden_layers, config_.latent_dim(), capacity, type);
}

KvCache Model::new_mtp_cache(int64_t capacity, LatentType type) const {
  return KvCache(1, config_.latent_dim(), capacity, type);
}

void Model::check_tokens(const int32_t* tokens, int64_t T) const {
  for (int64_t t = 0; t < T; ++t)
    if (tokens[t] < 0 || tokens[t] >= config_.vocab_size)
      fail("token id ", tokens[t], " at position ", t, " is outside the vocabulary [0, ", config_.vocab_size, ")");
}

void Model::block(Workspace& ws, const LayerWeights& L, int64_t layer_index, int64_t cache_layer, float* h, int64_t T,
                  const std::vector<AttnSeq>& seqs, const ForwardOptions& opts) const {
  const int64_t D = config_.hidden_size;
  float* const x = ws.block_in.get(size_t(T * D));
  float* const y = ws.block_out.get(size_t(T * D));
  const PhaseScope norms(ws.profile, Phase::Norms);
  for (int64_t t = 0; t < T; ++t) ops::rms_norm(h + t * D, L.attn_norm.data(), D, config_.rms_norm_eps, &x[t * D]);
  mla_attention(ws, config_, L.attn, rope_freqs_, x, T, seqs, cache_layer, opts.attention, y);
  for (int64_t i = 0; i < T * D; ++i) h[i] += y[i];

  for (int64_t t = 0; t < T; ++t) ops::rms_norm(h + t * D, L.mlp_norm.data(), D, config_.rms_norm_eps, &x[t * D]);
  if (L.moe) {
    RoutingTrace* trace = nullptr;
    if (opts.routing) {
      auto& traces = *opts.routing;
      auto it = std::find_if(traces.begin(), traces.end(), [&](const RoutingTrace& r) { return r.layer == layer_index; });
      if (it == traces.end()) {
        traces.push_back(RoutingTrace{layer_index, {}, {}});
        it = traces.end() - 1;
      }
      trace = &*it;
    }
    moe_forward(ws, config_, L.experts, layer_index, host_.get(), x, T, y, trace);
  } else {
    const PhaseScope dense(ws.profile, Phase::DenseMlp);
    mlp_forward(ws, L.dense, x, T, y);
  }
  for (int64_t i = 0; i < T * D; ++i) h[i] += y[i];
}

void Model::forward(Workspace& ws, const int32_t* tokens, int64_t T, KvCache& cache, float* logits,
                    const ForwardOptions& opts) const {
  if (T <= 0) return;
  check_tokens(tokens, T);
  const int64_t D = config_.hidden_size, start = cache.size();
  if (start + T > cache.capacity())
    fail("sequence of ", start + T, " tokens does not fit the cache (capacity ", cache.capacity(), ")");
  float* const h = ws.hidden.get(size_t(T * D));
  {
    const PhaseScope embedding(ws.profile, Phase::Embedding);
    for (int64_t t = 0; t < T; ++t) kernels::decode_row(weights_.embed, tokens[t], &h[t * D]);
  }
  const std::vector<AttnSeq> seqs{AttnSeq{0, T, start, &cache}};
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) block(ws, weights_.layers[size_t(i)], i, i, h, T, seqs, opts);
  cache.set_size(start + T);

  const PhaseScope head(ws.profile, Phase::Head);
  const int64_t first = opts.last_only ? T - 1 : 0, rows = T - first;
  float* const n = ws.normed.get(size_t(rows * D));
  for (int64_t t = first; t < T; ++t)
    ops::rms_norm(&h[t * D], weights_.final_norm.data(), D, config_.rms_norm_eps, &n[(t - first) * D]);
  if (opts.normed) std::copy(n, n + rows * D, opts.normed + first * D);
  if (logits) kernels::matmul(ws.kernels, weights_.lm_head, n, rows, logits);
}

void Model::forward_batch(Workspace& ws, const std::vector<BatchSeq>& seqs, float* logits,
                          const ForwardOptions& opts) const {
  const int64_t D = config_.hidden_size;
  std::vector<AttnSeq> aseqs;
  std::vector<int64_t> logit_rows;
  int64_t rows = 0;
  bool any_normed = false;
  for (const BatchSeq& s : seqs) {
    if (s.T <= 0) fail("a batched sequence has no tokens");
    if (!s.cache) fail("a batched sequence has no cache");
    if (s.want_logits && (s.logit_rows < 1 || s.logit_rows > s.T))
      fail("a batched sequence asks logits for ", s.logit_rows, " of its ", s.T, " rows");
    check_tokens(s.tokens, s.T);
    aseqs.push_back(AttnSeq{rows, s.T, s.start, s.cache, s.attention});
    rows += s.T;
    if (s.want_logits)
      for (int64_t r = rows - s.logit_rows; r < rows; ++r) logit_rows.push_back(r);
    any_normed |= s.normed != nullptr;
  }
  if (rows == 0) return;
  float* const h = ws.hidden.get(size_t(rows * D));
  {
    const PhaseScope embedding(ws.profile, Phase::Embedding);
    for (size_t k = 0; k < seqs.size(); ++k)
      for (int64_t t = 0; t < seqs[k].T; ++t)
        kernels::decode_row(weights_.embed, seqs[k].tokens[t], &h[(aseqs[k].row0 + t) * D]);
  }
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
    block(ws, weights_.layers[size_t(i)], i, i, h, rows, aseqs, opts);
  const PhaseScope head(ws.profile, Phase::Head);
  if (any_normed)
    for (size_t k = 0; k < seqs.size(); ++k)
      if (float* out = seqs[k].normed)
        for (int64_t t = 0; t < seqs[k].T; ++t)
          ops::rms_norm(&h[(aseqs[k].row0 + t) * D], weights_.final_norm.data(), D, config_.rms_norm_eps, &out[t * D]);
  if (logit_rows.empty() || !logits) return;
  const int64_t n = int64_t(logit_rows.size());
  float* const normed = ws.normed.get(size_t(n * D));
  for (int64_t k = 0; k < n; ++k)
    ops::rms_norm(&h[logit_rows[size_t(k)] * D], weights_.final_norm.data(), D, config_.rms_norm_eps, &normed[k * D]);
  kernels::matmul(ws.kernels, weights_.lm_head, normed, n, logits);
}

void Model::forward_mtp(Workspace& ws, const float* normed, const int32_t* next_tokens, int64_t T,
                        KvCache& mtp_cache, float* logits, const ForwardOptions& opts) const {
  if (T <= 0) return;
  if (mtp_cache.size() + T > mtp_cache.capacity())
    fail("MTP sequence of ", mtp_cache.size() + T, " tokens does not fit its cache (capacity ", mtp_cache.capacity(), ")");
  MtpSeq s;
  s.hidden = normed;
  s.next_tokens = next_tokens;
  s.T = T;
  s.start = mtp_cache.size();
  s.cache = &mtp_cache;
  s.logit_rows = T;
  forward_mtp_batch(ws, {s}, 0, logits, opts);
  mtp_cache.set_size(mtp_cache.size() + T);
}

void Model::forward_mtp_batch(Workspace& ws, const std::vector<MtpSeq>& seqs, int64_t cache_layer, float* logits,
                              const ForwardOptions& opts) const {
  if (!weights_.mtp) fail("this model has no MTP module (num_nextn_predict_layers is 0 or it was not loaded)");
  const MtpWeights& m = *weights_.mtp;
  const int64_t D = config_.hidden_size;
  std::vector<AttnSeq> aseqs;
  std::vector<std::pair<int64_t, float*>> out_rows;  // (row, where its block output goes)
  int64_t rows = 0;
  for (const MtpSeq& s : seqs) {
    if (s.T <= 0) fail("an MTP sequence has no tokens");
    if (!s.cache || !s.hidden) fail("an MTP sequence has no cache or no hidden states");
    if (s.logit_rows < 0 || s.logit_rows > s.T) fail("an MTP sequence asks logits for ", s.logit_rows, " of ", s.T, " rows");
    check_tokens(s.next_tokens, s.T);
    aseqs.push_back(AttnSeq{rows, s.T, s.start, s.cache});
    rows += s.T;
    for (int64_t r = 0; r < s.logit_rows; ++r)
      out_rows.emplace_back(rows - s.logit_rows + r, s.block_out ? s.block_out + r * D : nullptr);
  }
  if (rows == 0) return;
  // [enorm(Emb(t_{i+1})) ; hnorm(h_i)]: the embedding comes first.
  float* const cat = ws.mtp_in.get(size_t(rows * 2 * D));
  float* const h = ws.hidden.get(size_t(rows * D));
  for (size_t k = 0; k < seqs.size(); ++k)
    for (int64_t t = 0; t < seqs[k].T; ++t) {
      float* e = &cat[(aseqs[k].row0 + t) * 2 * D];
      kernels::decode_row(m.embed, seqs[k].next_tokens[t], e);
      ops::rms_norm(e, m.enorm.data(), D, config_.rms_norm_eps, e);
      ops::rms_norm(seqs[k].hidden + t * D, m.hnorm.data(), D, config_.rms_norm_eps, e + D);
    }
  kernels::matmul(ws.kernels, m.eh_proj, cat, rows, h);
  block(ws, m.block, config_.num_hidden_layers, cache_layer, h, rows, aseqs, opts);
  if (out_rows.empty() || !logits) return;
  const PhaseScope head(ws.profile, Phase::Head);
  const int64_t n = int64_t(out_rows.size());
  float* const normed = ws.normed.get(size_t(n * D));
  for (int64_t k = 0; k < n; ++k) {
    const float* row = &h[out_rows[size_t(k)].first * D];
    if (float* out = out_rows[size_t(k)].second) std::copy(row, row + D, out);
    ops::rms_norm(row, m.head_norm.data(), D, config_.rms_norm_eps, &normed[k * D]);
  }
  kernels::matmul(ws.kernels, m.head, normed, n, logits);
}

}  // namespace dsv3::model
