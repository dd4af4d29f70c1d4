// The DeepSeek-V3 forward pass on CPU: embedding, decoder blocks (MLA + dense MLP or MoE),
// final norm, lm_head, and the MTP module. Activations are fp32 and [T, dim] row-major.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/config.h"
#include "model/expert_host.h"
#include "model/latent_store.h"
#include "model/moe.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3::model {

//! The latent KV cache of one sequence: per layer and token, the normalized compressed KV
//! (kv_lora_rank values) followed by the rotated shared rope key (qk_rope_head_dim values).
class KvCache final : public LatentStore {
 public:
  KvCache(int64_t n_layers, int64_t latent_dim, int64_t capacity, LatentType type = LatentType::F32);
  int64_t size() const { return len_; }
  int64_t capacity() const { return capacity_; }
  int64_t latent_dim() const { return dim_; }
  LatentType type() const override { return type_; }
  //! Row (layer, pos) of an F32 cache.
  float* at(int64_t layer, int64_t pos) { return data_.data() + offset(layer, pos); }
  const float* at(int64_t layer, int64_t pos) const { return data_.data() + offset(layer, pos); }
  //! Row (layer, pos) of a BF16 cache.
  uint16_t* at_bf16(int64_t layer, int64_t pos) { return half_.data() + offset(layer, pos); }
  const uint16_t* at_bf16(int64_t layer, int64_t pos) const { return half_.data() + offset(layer, pos); }
  void set_size(int64_t n) { len_ = n; }
  void clear() { len_ = 0; }
  uint64_t bytes() const { return data_.size() * sizeof(float) + half_.size() * sizeof(uint16_t); }
  float* row(int64_t layer, int64_t pos) override {
    if (type_ != LatentType::F32) fail("this latent cache holds bf16 rows, not fp32");
    return at(layer, pos);
  }
  uint16_t* row_bf16(int64_t layer, int64_t pos) override {
    if (type_ != LatentType::BF16) fail("this latent cache holds fp32 rows, not bf16");
    return at_bf16(layer, pos);
  }
  const float* contiguous(int64_t layer) override { return type_ == LatentType::F32 ? at(layer, 0) : nullptr; }
  void rows(int64_t layer, int64_t n, const float** out) override {
    for (int64_t j = 0; j < n; ++j) out[j] = row(layer, 0) + j * dim_;
  }
  void rows_bf16(int64_t layer, int64_t n, const uint16_t** out) override {
    for (int64_t j = 0; j < n; ++j) out[j] = row_bf16(layer, 0) + j * dim_;
  }

 private:
  size_t offset(int64_t layer, int64_t pos) const {
    return (size_t(layer) * size_t(capacity_) + size_t(pos)) * size_t(dim_);
  }
  int64_t n_layers_, dim_, capacity_, len_ = 0;
  LatentType type_;
  std::vector<float> data_;     // F32 rows
  std::vector<uint16_t> half_;  // BF16 rows
};

struct ForwardOptions {
  AttentionForm attention = AttentionForm::Auto;
  std::vector<RoutingTrace>* routing = nullptr;  // if set, MoE layers append their decisions
  //! forward: logits (and normed rows) of the last token only (a prefill that samples).
  bool last_only = false;
  //! forward: if set, receives the final-normed hidden states [T, hidden] (only the last
  //! row with last_only), which the MTP module takes.
  float* normed = nullptr;
};

//! One sequence's share of a batched step (Model::forward_batch): T tokens at positions
//! start .. start+T-1 whose latents go to `cache` (which must have room for them).
struct BatchSeq {
  const int32_t* tokens = nullptr;
  int64_t T = 0;
  int64_t start = 0;
  LatentStore* cache = nullptr;
  bool want_logits = false;  // logits of its last logit_rows tokens
  int64_t logit_rows = 1;    // with want_logits: how many trailing rows get logits (a verify step: all)
  float* normed = nullptr;   // if set, receives the final-normed hidden states of all T rows [T, hidden]
  AttentionForm attention = AttentionForm::Auto;  // Auto: ForwardOptions::attention
};

//! One sequence's share of a batched MTP step (Model::forward_mtp_batch): for i < T, the
//! hidden state hidden[i] of position start+i (the main model's final-normed state, or, for
//! a chained draft, the MTP block's own output) with the embedding of the token at position
//! start+i+1, next_tokens[i]. Its latents go to `cache` at the layer the call names.
struct MtpSeq {
  const float* hidden = nullptr;
  const int32_t* next_tokens = nullptr;
  int64_t T = 0;
  int64_t start = 0;
  LatentStore* cache = nullptr;
  int64_t logit_rows = 1;       // trailing rows whose logits are written (0: none)
  float* block_out = nullptr;   // if set, receives those rows' block output (before shared_head.norm)
};

struct LoadOptions {
  bool load_mtp = true;
  io::WeightMemory memory = io::WeightMemory::Map;
  //! Expert parallelism: only the routed experts the host holds are bound (and touched);
  //! the others run where the host sends them.
  std::shared_ptr<ExpertHost> experts;
  //! Bind the routed experts (those `experts` holds) and nothing else: an expert-parallel
  //! rank that only runs experts for another.
  bool experts_only = false;
};

class Model {
 public:
  //! Loads config.json and the safetensors checkpoint in `dir` (zero-copy, mmapped).
  static Model load(const std::string& dir, const LoadOptions& opts = {});
  Model(ModelConfig config, ModelWeights weights);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }

  //! A cache for `capacity` positions; a BF16 one only for numerics other than fp32
  //! (latent_type_for).
  KvCache new_cache(int64_t capacity, LatentType type = LatentType::F32) const;
  KvCache new_mtp_cache(int64_t capacity, LatentType type = LatentType::F32) const;

  //! Runs T tokens at positions cache.size() .. cache.size()+T-1, appending them to the
  //! cache. Writes logits [T, vocab] when `logits` is non-null (only the last row with
  //! opts.last_only) and the final-normed hidden states to opts.normed when set.
  void forward(Workspace& ws, const int32_t* tokens, int64_t T, KvCache& cache, float* logits,
               const ForwardOptions& opts = {}) const;

  //! Runs several sequences in one pass: every weight matrix is read once for all their
  //! rows, attention stays within each sequence. Writes one logits row [vocab] per sequence
  //! with want_logits, in order. With a fixed attention form each sequence's results are
  //! bit-identical to running it alone (what continuous batching needs).
  void forward_batch(Workspace& ws, const std::vector<BatchSeq>& seqs, float* logits,
                     const ForwardOptions& opts = {}) const;

  //! The MTP module: for i < T, combines the main model's normed hidden state normed[i]
  //! with the embedding of next_tokens[i] (the token at position i+1), runs the MTP block at
  //! positions mtp_cache.size()+i and writes logits [T, vocab] predicting token i+2.
  void forward_mtp(Workspace& ws, const float* normed, const int32_t* next_tokens, int64_t T, KvCache& mtp_cache,
                   float* logits, const ForwardOptions& opts = {}) const;

  //! The MTP module over several sequences at once (MTP weights and head read once for all
  //! rows): each sequence's latents go to layer `cache_layer` of its store; logits rows are
  //! written for each sequence's trailing logit_rows rows, in order. Speculative decoding
  //! drafts with it. Each sequence's results are bit-identical to running it alone.
  void forward_mtp_batch(Workspace& ws, const std::vector<MtpSeq>& seqs, int64_t cache_layer, float* logits,
                         const ForwardOptions& opts = {}) const;

  //! Whether the checkpoint has an MTP module and it was loaded.
  bool has_mtp() const { return weights_.mtp.has_value(); }
  //! The expert-parallel host it was loaded with, or nullptr.
  ExpertHost* expert_host() const { return host_.get(); }

 private:
  void block(Workspace& ws, const LayerWeights& L, int64_t layer_index, int64_t cache_layer, float* h, int64_t rows,
             const std::vector<AttnSeq>& seqs, const ForwardOptions& opts) const;
  void check_tokens(const int32_t* tokens, int64_t T) const;

  ModelConfig config_;
  ModelWeights weights_;
  std::vector<double> rope_freqs_;
  std::shared_ptr<ExpertHost> host_;
};

}  // namespace dsv3::model
