// The trainable DeepSeek-V3 model: fp32 master weights, hand-written backward through the
// whole network (embedding, MLA + dense/MoE blocks, final norm, lm_head, MTP depth 1), the
// next-token, MTP and sequence-wise balance losses. Multi-threaded over the pool it is given;
// one sequence per call, not thread-safe (one caller at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "threading/pool.h"
#include "train/params.h"

namespace dsv3::train {

struct LossOptions {
  double mtp_weight = 0.0;     // lambda; the MTP module runs only when > 0
  double balance_alpha = 0.0;  // alpha of the sequence-wise balance loss
};

struct StepStats {
  double loss = 0, main_ce = 0, mtp_ce = 0, balance = 0;  // loss = main + mtp_weight*mtp + alpha*balance
  int64_t tokens = 0;                                     // predicted tokens of the main CE (T-1)
  //! Per MoE layer (main model, then MTP), per routed expert: tokens routed to it in this
  //! call (the MTP entry stays zero when the MTP module did not run).
  std::vector<std::vector<int64_t>> expert_load;
};

class TrainModel {
 public:
  //! A fresh model: norms 1, gate biases 0, every other tensor N(0, init_std^2).
  //! It computes on `pool`, which must outlive it.
  static TrainModel init(const model::ModelConfig& cfg, uint64_t seed, double init_std, ThreadPool& pool);
  //! Loads config.json and the checkpoint in `dir`; FP8/BF16/F16/F32 become fp32 masters.
  static TrainModel from_checkpoint(const std::string& dir, ThreadPool& pool);

  TrainModel(TrainModel&&) noexcept;
  TrainModel& operator=(TrainModel&&) noexcept;
  ~TrainModel();

  const model::ModelConfig& config() const;
  //! Every trainable tensor once (the MTP copies of embedding and head are tied, not listed).
  std::vector<Param>& params();
  const std::vector<Param>& params() const;
  //! e_score_correction_bias of MoE layer i (main-model MoE layers in order, then MTP's);
  //! updated by the training loop, never by gradients.
  std::vector<float>& gate_bias(int64_t moe_layer_index);
  int64_t num_moe_layers() const;

  //! Adds grad_scale * d(loss)/d(param) into Param::grad for one sequence of T >= 2 tokens
  //! (T >= 3 when opts.mtp_weight > 0); returns the loss terms (unscaled).
  StepStats loss_and_grad(const int32_t* tokens, int64_t T, const LossOptions& opts, float grad_scale = 1.0f);
  //! The same loss terms without gradients (evaluation).
  StepStats loss_only(const int32_t* tokens, int64_t T, const LossOptions& opts);
  void zero_grad();

  //! Export view: every tensor a checkpoint of this model holds, in checkpoint order, by
  //! checkpoint name -> the Param holding its fp32 value. Includes the gate biases (Params
  //! with an empty grad) and, for MTP, `model.layers.N.embed_tokens.weight` and
  //! `model.layers.N.shared_head.head.weight`, which point at the tied main embedding and
  //! lm_head. Pointers stay valid for the life of the model.
  std::vector<std::pair<std::string, const Param*>> checkpoint_tensors() const;

 private:
  struct Impl;
  explicit TrainModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv3::train
