// AdamW with fp32 moments and bias correction (decoupled weight decay, as PyTorch's AdamW),
// and global-norm gradient clipping. Per-element math is done in double and stored as fp32
// (kernels/adamw.h), so a step depends only on its inputs, never on threads or vector width.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "threading/pool.h"
#include "train/run_config.h"
#include "train/trainable.h"

namespace dsv3::train {

//! Weight decay applies to matrices only: 1-D tensors are norms and biases.
inline bool decays(const ParamView& p) { return p.shape->size() >= 2; }

//! sqrt(sum of every grad^2), accumulated in double in parameter order.
double global_grad_norm(const std::vector<ParamView>& params);
//! Scales every grad by max_norm / norm when norm > max_norm (max_norm 0: never). Returns
//! the norm before clipping.
double clip_grad_norm(const std::vector<ParamView>& params, double max_norm);

class AdamW {
 public:
  //! bf16_moments: keep m and v rounded to BF16 after each update, as the report does
  //! (training precision bf16 and fp8); the update itself uses the unrounded ones.
  explicit AdamW(const OptimizerChoice& settings, bool bf16_moments = false)
      : s_(settings), bf16_moments_(bf16_moments) {}

  //! Zero moments sized for `params` (names remembered for state checks).
  void attach(const std::vector<ParamView>& params);
  //! One update with learning rate lr: t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  //! p -= lr * wd * p (matrices only); p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
  //! Split over `pool` when given (kernels/adamw.h: the same bits for any split).
  void step(const std::vector<ParamView>& params, double lr, ThreadPool* pool = nullptr);

  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  size_t size() const { return m_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }
  std::vector<float>& m(size_t i) { return m_[i]; }
  std::vector<float>& v(size_t i) { return v_[i]; }

 private:
  OptimizerChoice s_;
  bool bf16_moments_;
  int64_t t_ = 0;
  std::vector<std::string> names_;
  std::vector<std::vector<float>> m_, v_;
};

}  // namespace dsv3::train
