// DebugMoeBigram: the smallest model that exercises everything the training loop does
// around the gradient: embeddings, a sigmoid-gated top-1 MoE layer whose expert choice uses
// the gate bias (selection only, as in DeepSeek-V3), a 1-D parameter (no weight decay), the
// sequence-wise balance loss, and hand-written exact gradients. Run it with
// `"model": {"type": "debug_moe_bigram"}` to check data, schedules, balancing, logging and
// resume before spending time on the real model. It has no MTP module (mtp_ce is 0).
//
//   x = embed[t];  s_e = sigmoid(gate_e . x);  e* = argmax_e (s_e + bias_e)
//   y = x + s_e* * (experts[e*] x);  logits = head (out_scale * y)
#pragma once

#include <string>
#include <vector>

#include "threading/pool.h"
#include "train/trainable.h"

namespace dsv3::train {

class DebugMoeBigram final : public Trainable {
 public:
  //! Its loss runs on `pool` (the caller keeps it alive as long as the model).
  DebugMoeBigram(int64_t vocab, int64_t dim, int64_t experts, uint64_t seed, double init_std, ThreadPool& pool);

  std::string kind() const override { return "debug_moe_bigram"; }
  int64_t vocab_size() const override { return V_; }
  const model::ModelConfig* hf_config() const override { return nullptr; }
  std::vector<ParamView> params() override;
  int64_t num_moe_layers() const override { return 1; }
  std::vector<float>& gate_bias(int64_t moe_layer) override;
  std::string gate_bias_name(int64_t moe_layer) const override;
  LossTerms loss_and_grad(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale) override;
  LossTerms loss_only(const int32_t* tokens, int64_t T, const LossWeights& w) override;
  void zero_grad() override;

 private:
  LossTerms run(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale, bool backward);

  ThreadPool* pool_;
  int64_t V_, D_, E_;
  std::vector<Param> t_;  // embed, gate, experts.0.., head, out_scale
  std::vector<float> bias_;
};

}  // namespace dsv3::train
