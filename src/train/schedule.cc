#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dsv3::train {
namespace {

// Cosine from 1 at p = 0 to 0 at p = 1.
double half_cosine(double p) { return 0.5 * (1.0 + std::cos(std::numbers::pi * std::clamp(p, 0.0, 1.0))); }

bool before(int64_t step, double fraction, int64_t total) { return double(step) < fraction * double(total); }

}  // namespace

double learning_rate(const ScheduleChoice& s, double lr, int64_t step, int64_t total) {
  if (step < s.warmup_steps) return lr * double(step + 1) / double(s.warmup_steps);
  const double min_lr = lr * s.min_lr_ratio;
  switch (s.type) {
    case ScheduleType::Constant: return lr;
    case ScheduleType::Cosine: {
      const int64_t span = total - s.warmup_steps - 1;  // the last step reaches min_lr exactly
      if (span <= 0) return lr;
      return min_lr + (lr - min_lr) * half_cosine(double(step - s.warmup_steps) / double(span));
    }
    case ScheduleType::ConstantThenDecay: {
      if (before(step, s.decay_start, total)) return lr;
      if (before(step, s.decay_end, total)) {
        const double a = s.decay_start * double(total), b = s.decay_end * double(total);
        return min_lr + (lr - min_lr) * half_cosine((double(step) - a) / (b - a));
      }
      if (before(step, s.tail_start, total)) return min_lr;
      return lr * s.tail_lr_ratio;
    }
  }
  return lr;
}

double mtp_weight(const MtpChoice& m, int64_t step, int64_t total) {
  return before(step, m.switch_at, total) ? m.weight : m.later_weight;
}

double bias_update_speed(const BalanceChoice& b, int64_t step, int64_t total) {
  if (b.mode == BalanceMode::Classic) return 0.0;
  return before(step, b.gamma_stop_at, total) ? b.gamma : 0.0;
}

double balance_weight(const BalanceChoice& b) { return b.mode == BalanceMode::Classic ? b.classic_alpha : b.alpha; }

}  // namespace dsv3::train
