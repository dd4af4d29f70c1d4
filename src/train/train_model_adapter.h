// The thin adapter between the training loop's Trainable interface and the DeepSeek-V3
// training core's API (train::TrainModel: params() of {name, shape, value, grad},
// gate_bias(i), num_moe_layers(), loss_and_grad / loss_only taking a LossOptions with
// mtp_weight and balance_alpha and returning StepStats). A template over the core's types,
// so it compiles and is tested (tests/train_adapter_test.cc, against a stand-in with the
// same API) before the core lands; make_trainable instantiates it with the real one.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "model/tensor_table.h"
#include "train/trainable.h"

namespace dsv3::train {

template <class Core, class CoreLossOptions>
class TrainModelAdapter final : public Trainable {
 public:
  explicit TrainModelAdapter(Core core) : core_(std::move(core)) {
    // MoE layer i's bias is the i-th noaux_tc gate of the checkpoint layout: main layers,
    // then the MTP block, which is what the core's layer order is specified to be.
    for (const model::TensorSpec& s : model::tensor_table(core_.config()))
      if (s.role == model::TensorRole::Bias) bias_names_.push_back(s.name);
    if (int64_t(bias_names_.size()) < core_.num_moe_layers())
      fail("the training core reports ", core_.num_moe_layers(), " MoE layers, the config has ", bias_names_.size(),
           " gate biases");
    bias_names_.resize(size_t(core_.num_moe_layers()));
  }

  std::string kind() const override { return "deepseek_v3"; }
  int64_t vocab_size() const override { return core_.config().vocab_size; }
  const model::ModelConfig* hf_config() const override { return &core_.config(); }
  std::vector<ParamView> params() override {
    std::vector<ParamView> out;
    for (auto& p : core_.params()) out.push_back(ParamView{&p.name, &p.shape, p.value.data(), p.grad.data()});
    return out;
  }
  int64_t num_moe_layers() const override { return core_.num_moe_layers(); }
  std::vector<float>& gate_bias(int64_t i) override { return core_.gate_bias(i); }
  std::string gate_bias_name(int64_t i) const override { return bias_names_.at(size_t(i)); }
  LossTerms loss_and_grad(const int32_t* tokens, int64_t T, const LossWeights& w, float grad_scale) override {
    return convert(core_.loss_and_grad(tokens, T, options(w), grad_scale));
  }
  LossTerms loss_only(const int32_t* tokens, int64_t T, const LossWeights& w) override {
    return convert(core_.loss_only(tokens, T, options(w)));
  }
  void zero_grad() override { core_.zero_grad(); }

  Core& core() { return core_; }

 private:
  static CoreLossOptions options(const LossWeights& w) {
    CoreLossOptions o;
    o.mtp_weight = w.mtp_weight;
    o.balance_alpha = w.balance_alpha;
    return o;
  }
  template <class Stats>
  static LossTerms convert(const Stats& s) {
    LossTerms t;
    t.loss = s.loss;
    t.main_ce = s.main_ce;
    t.mtp_ce = s.mtp_ce;
    t.balance = s.balance;
    t.tokens = s.tokens;
    t.expert_load = s.expert_load;
    return t;
  }

  Core core_;
  std::vector<std::string> bias_names_;
};

}  // namespace dsv3::train
