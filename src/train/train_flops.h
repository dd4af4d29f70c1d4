// The model FLOPs of a training step, counted from the config the way `dsv3 bench` counts a
// forward pass (model/flops.h: every matrix product, the router and the vocabulary head;
// attention as H x (qk + v) multiply-adds per causal (query, key) pair; no norms, RoPE or
// softmax), times 3 for forward plus backward (the backward's two products per forward
// one), times 2 FLOPs per multiply-add. What the run's MFU is measured with
// (docs/training.md).
#pragma once

#include <cstdint>

#include "model/config.h"

namespace dsv3::train {

//! FLOPs of forward + backward over one training window of `window` tokens (seq_len + 1):
//! the decoder layers on every token, the head on window - 1, and with `mtp` the MTP
//! module (eh_proj, its block and the head) on window - 2.
double train_flops_per_window(const model::ModelConfig& c, int64_t window, bool mtp);

}  // namespace dsv3::train
