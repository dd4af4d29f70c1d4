// The trainable DeepSeek-V3 model: fp32 master weights, hand-written backward through the
// whole network (embedding, MLA + dense/MoE blocks, final norm, lm_head, MTP depth 1), the
// next-token, MTP and sequence-wise balance losses, behind the training loop's Trainable
// interface. Multi-threaded over the pool it is given; one sequence per call, not
// thread-safe (one caller at a time). The activations a call keeps for its backward pass
// live in the model and are reused by the next call (the per-layer functions still make
// their own short-lived temporaries).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/numerics.h"
#include "model/config.h"
#include "threading/pool.h"
#include "train/trainable.h"

namespace dsv3::train {

class TrainModel final : public Trainable {
 public:
  //! A fresh model: norms 1, gate biases 0, every other tensor N(0, init_std^2).
  //! It computes on `pool`, which must outlive it.
  static TrainModel init(const model::ModelConfig& cfg, uint64_t seed, double init_std, ThreadPool& pool);
  //! Loads config.json and the checkpoint in `dir` through the inference loader (its checks
  //! and messages); FP8/BF16/F16/F32 become fp32 masters.
  static TrainModel from_checkpoint(const std::string& dir, ThreadPool& pool);
  //! The same with `cfg` in place of the folder's config.json: the same architecture, where
  //! only position settings (max_position_embeddings, rope_scaling) may differ (context
  //! extension). The tensors' shapes are checked against cfg.
  static TrainModel from_checkpoint(const std::string& dir, const model::ModelConfig& cfg, ThreadPool& pool);

  TrainModel(TrainModel&&) noexcept;
  TrainModel& operator=(TrainModel&&) noexcept;
  ~TrainModel() override;

  std::string kind() const override { return "deepseek_v3"; }
  int64_t vocab_size() const override;
  const model::ModelConfig* hf_config() const override;
  //! Every trainable tensor once, under its checkpoint name, in trainable_specs() order (the
  //! MTP copies of embedding and head are tied to the main ones, not listed).
  std::vector<ParamView> params() override;
  //! MoE layers in order: main-model ones, then the MTP block's.
  int64_t num_moe_layers() const override;
  //! e_score_correction_bias of MoE layer i; updated by the training loop, never by gradients.
  std::vector<float>& gate_bias(int64_t moe_layer) override;
  std::string gate_bias_name(int64_t moe_layer) const override;

  //! Needs T >= 2 tokens (T >= 3 when w.mtp_weight > 0, which runs the MTP module);
  //! expert_load has one entry per MoE layer (the MTP one zero when the module did not run).
  LossTerms loss_and_grad(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale) override;
  LossTerms loss_only(const int32_t* tokens, int64_t T, const LossWeights& w) override;
  //! Also marks the weights changed (a new step begins).
  void zero_grad() override;
  void weights_changed() override;

  //! How the decoder blocks' Linear layers compute (train/low_precision.h); fp32 at first.
  //! In bf16 and fp8 their weights are prepared in that form once and reused until
  //! zero_grad(), weights_changed(), params() or set_precision() says they may have changed.
  void set_precision(kernels::Numerics n);
  kernels::Numerics precision() const;

 private:
  struct Impl;
  explicit TrainModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv3::train
