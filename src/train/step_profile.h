// Where a training step spends its time (`dsv3 train --profile`), by phase: the Linear
// layers' GEMMs by kind (Fprop y = x W^T, Dgrad dx = dy W, Wgrad dW = dy^T x; the vocabulary
// head included), the quantization of their FP8/BF16 operands, the attention core (scores,
// softmax, values and their backward), the rest of the model's own work (norms, RoPE,
// activations, router, losses, embedding), the optimizer (clipping, AdamW, gate biases),
// the routed experts (GEMMs and SwiGLU, one expert per core at a time), evaluation and
// data. Phases nest: an inner phase's time is not counted in the outer one. One profile is
// active at a time, on the thread that runs the training loop (other threads see none);
// without one a scope costs a pointer test.
#pragma once

#include <array>
#include <chrono>
#include <string>

namespace dsv3::train {

enum class StepPhase { Other, Model, GemmFprop, GemmDgrad, GemmWgrad, Quantize, AttnCore, Experts, Optimizer, Eval, Data, Teacher, kCount };

const char* step_phase_name(StepPhase p);

class StepProfile {
 public:
  using Clock = std::chrono::steady_clock;
  std::array<double, size_t(StepPhase::kCount)> seconds{};

  //! Charges the time since the last switch to the current phase; makes p current.
  StepPhase enter(StepPhase p) {
    const auto now = Clock::now();
    seconds[size_t(current_)] += std::chrono::duration<double>(now - since_).count();
    since_ = now;
    const StepPhase prev = current_;
    current_ = p;
    return prev;
  }
  //! A table of the phases (seconds, share of the total), one per line.
  std::string table() const;

  //! The profile scopes charge (nullptr: none). Set by the trainer for the run.
  static StepProfile* active();
  static void set_active(StepProfile* p);

 private:
  StepPhase current_ = StepPhase::Other;
  Clock::time_point since_ = Clock::now();
};

//! No profile on this thread for its lifetime: a pool job that runs on the loop's thread too
//! (its thread 0) charges its time to the phase around the job, like the other threads.
class StepProfilePause {
 public:
  StepProfilePause() : saved_(StepProfile::active()) { StepProfile::set_active(nullptr); }
  ~StepProfilePause() { StepProfile::set_active(saved_); }
  StepProfilePause(const StepProfilePause&) = delete;
  StepProfilePause& operator=(const StepProfilePause&) = delete;

 private:
  StepProfile* saved_;
};

//! Charges its scope to `phase` of the active profile, if any.
class StepScope {
 public:
  explicit StepScope(StepPhase phase) : p_(StepProfile::active()) {
    if (p_) prev_ = p_->enter(phase);
  }
  ~StepScope() {
    if (p_) p_->enter(prev_);
  }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;

 private:
  StepProfile* p_;
  StepPhase prev_ = StepPhase::Other;
};

}  // namespace dsv3::train
