// Where a forward pass spends its time and weight bytes, by phase (`dsv3 bench --profile`).
// A Workspace with a Profile attached times each phase; without one (the default) the
// hooks cost a pointer test. Phases nest: an inner phase's time and bytes are not counted
// in the phase around it, so the phases add up to the whole.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "kernels/matmul.h"

namespace dsv3::model {

enum class Phase {
  Other,        // outside every named phase (the caller's own work)
  Embedding,    // token embedding rows
  Norms,        // RMSNorms before attention and MLP, residual adds
  AttnProj,     // q_a / q_b / q, kv_a, kv_b (absorption and values), o products
  AttnCore,     // RoPE, cache writes, scores, softmax, weighted latents
  Router,       // gate product, expert choice, gathering tokens by expert
  Experts,      // routed and shared experts (one job), weighted combine
  DenseMlp,     // dense layers' MLP
  Head,         // final norm and vocabulary head
  Sampling,     // choosing the next token (timed by the caller)
  kCount
};

const char* phase_name(Phase p);

struct PhaseStats {
  double seconds = 0;
  uint64_t weight_bytes = 0;
};

class Profile {
 public:
  using Clock = std::chrono::steady_clock;
  std::array<PhaseStats, size_t(Phase::kCount)> phases{};
  double pool_wait_seconds = 0;  // included in the phases' time

  //! Makes p the current phase (charging the time and bytes since the last switch to the
  //! phase that was current); returns that previous phase.
  Phase enter(Phase p) {
    const auto now = Clock::now();
    const uint64_t bytes = kernels::weight_bytes_read();
    PhaseStats& s = phases[size_t(current_)];
    if (started_) {
      s.seconds += std::chrono::duration<double>(now - since_).count();
      s.weight_bytes += bytes - bytes_at_;
    }
    started_ = true;
    since_ = now;
    bytes_at_ = bytes;
    const Phase prev = current_;
    current_ = p;
    return prev;
  }
  //! Starts charging time (to Phase::Other until a scope says otherwise).
  void start() {
    started_ = false;
    enter(Phase::Other);
  }
  //! Charges the time since the last switch and stops until the next start().
  void stop() {
    enter(Phase::Other);
    started_ = false;
  }

 private:
  Phase current_ = Phase::Other;
  bool started_ = false;
  Clock::time_point since_{};
  uint64_t bytes_at_ = 0;
};

//! Charges its scope to `phase` in `profile` (a no-op for nullptr).
class PhaseScope {
 public:
  PhaseScope(Profile* profile, Phase phase) : profile_(profile) {
    if (profile_) prev_ = profile_->enter(phase);
  }
  ~PhaseScope() {
    if (profile_) profile_->enter(prev_);
  }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  Profile* profile_;
  Phase prev_ = Phase::Other;
};

}  // namespace dsv3::model
