// What the training loop needs from a model, and nothing more: named fp32 parameters with
// gradient buffers, the MoE gate biases the balancer adjusts, and a loss that adds its
// gradient in. The DeepSeek-V3 model (train::TrainModel, train/model_grad.h) implements it;
// so does DebugMoeBigram (train/debug_model.h), a small model for tests and for checking a
// run end to end. make_trainable (train/model_factory.h) builds the one a run asks for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"

namespace dsv3::train {

//! One trainable tensor seen through the interface. The pointers stay valid as long as the
//! model lives and its parameter set does not change.
struct ParamView {
  const std::string* name;              // checkpoint name (Hugging Face layout for V3)
  const std::vector<int64_t>* shape;
  float* value;                          // numel() floats
  float* grad;                           // numel() floats, same layout
  uint64_t numel() const {
    uint64_t n = 1;
    for (int64_t d : *shape) n *= uint64_t(d);
    return n;
  }
};

//! A parameter's storage: fp32 values and a gradient of the same layout.
struct Param {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> value, grad;  // grad is empty for tensors no gradient reaches (gate biases)
  //! Valid while this Param neither moves nor changes size.
  ParamView view() { return ParamView{&name, &shape, value.data(), grad.data()}; }
};

//! Loss weights of one step (see docs/training.md). In classic mode the trainer passes the
//! classic auxiliary-loss weight as balance_alpha and never moves the gate biases.
struct LossWeights {
  double mtp_weight = 0.0;
  double balance_alpha = 0.0;
  //! If set, which predictions count (T - 1 entries): mask[i] for the main head's prediction
  //! of token i + 1, and for the MTP module's of token i + 1 from position i - 1. The losses
  //! are means over the counted predictions (a sequence with none adds nothing). Passkey
  //! examples count only their answer (train/passkey_data.h).
  const uint8_t* target_mask = nullptr;
  //! Logit distillation (train/teacher.h): if set, the teacher's logits [T - 1, V] for the
  //! main head's predictions, and the main loss becomes (1 - kd_weight) CE + kd_weight
  //! kd_temperature^2 KL (loss.h). The MTP head keeps its plain CE.
  const float* teacher_logits = nullptr;
  double kd_weight = 0.0, kd_temperature = 1.0;
};

//! What one loss evaluation returns. Losses are means over the sequence's predicted tokens.
struct LossTerms {
  double loss = 0, main_ce = 0, mtp_ce = 0, balance = 0;
  double kd = 0;                                        // KL to the teacher (distillation only)
  int64_t tokens = 0;                                   // predicted tokens (main head)
  int64_t counted = 0;                                  // of those, the ones the loss counts (target_mask)
  // loss_only of a DeepSeek-V3 model also counts argmax hits among the counted predictions:
  // the main head's next token, and (when the MTP module ran) its next-next token over
  // mtp_tokens rows.
  int64_t main_correct = 0, mtp_correct = 0, mtp_tokens = 0;
  std::vector<std::vector<int64_t>> expert_load;        // [moe layer][routed expert] tokens routed
  // loss_and_grad: the bytes of activations it kept for its backward pass, and of them the
  // decoder blocks' (0: the model does not count them).
  int64_t kept_bytes = 0, kept_block_bytes = 0;
};

class Trainable {
 public:
  virtual ~Trainable() = default;

  //! A short name of the model family ("deepseek_v3", "debug_moe_bigram"), stored in the
  //! training state so a resume cannot load one model's state into another.
  virtual std::string kind() const = 0;
  virtual int64_t vocab_size() const = 0;
  //! The Hugging Face config when the model exports to the published layout, else nullptr.
  virtual const model::ModelConfig* hf_config() const = 0;

  //! Every trainable tensor (tied copies excluded), in a fixed order.
  virtual std::vector<ParamView> params() = 0;
  virtual int64_t num_moe_layers() const = 0;
  //! e_score_correction_bias of MoE layer i (selection only: not a parameter, no gradient).
  virtual std::vector<float>& gate_bias(int64_t moe_layer) = 0;
  //! Its checkpoint name.
  virtual std::string gate_bias_name(int64_t moe_layer) const = 0;

  //! Loss of one sequence of T tokens (predicting tokens[1..T-1]); ADDS grad_scale * dLoss
  //! into every parameter's grad.
  virtual LossTerms loss_and_grad(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale) = 0;
  //! The same loss without gradients (evaluation).
  virtual LossTerms loss_only(const int32_t* tokens, int64_t T, const LossWeights& w) = 0;
  virtual void zero_grad() = 0;
  //! Parameter values changed (the optimizer stepped): a model that keeps derived copies of
  //! its weights (TrainModel's FP8 / BF16 forms) must rebuild them before the next loss.
  virtual void weights_changed() {}
};

}  // namespace dsv3::train
