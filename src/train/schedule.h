// Per-step schedules of a run: learning rate, MTP loss weight and bias update speed. `step`
// is the 0-based index of the optimizer step about to be taken, `total` the run's steps;
// fractions in the config are fractions of `total`, so a changed step count stretches them.
#pragma once

#include <cstdint>

#include "train/run_config.h"

namespace dsv3::train {

//! Learning rate for step `step` of `total`:
//!  warmup: lr * (step+1) / warmup_steps for step < warmup_steps, then
//!  constant: lr;
//!  cosine: from lr down to lr*min_lr_ratio at the last step;
//!  constant_then_decay (DeepSeek-V3): lr until decay_start, cosine to lr*min_lr_ratio by
//!  decay_end, lr*min_lr_ratio until tail_start, then lr*tail_lr_ratio.
double learning_rate(const ScheduleChoice& s, double lr, int64_t step, int64_t total);
//! mtp.weight before switch_at, mtp.later_weight after.
double mtp_weight(const MtpChoice& m, int64_t step, int64_t total);
//! balance.gamma before gamma_stop_at, then 0; always 0 in classic mode.
double bias_update_speed(const BalanceChoice& b, int64_t step, int64_t total);
//! The weight of the balance loss handed to the model: alpha, or classic_alpha in classic mode.
double balance_weight(const BalanceChoice& b);

}  // namespace dsv3::train
