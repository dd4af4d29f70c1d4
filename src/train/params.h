// The trainable tensors of a DeepSeek-V3 model as fp32 master weights with gradients, under
// their checkpoint names, and how they are created (random init) or read (any checkpoint
// dtype, FP8 dequantised).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/config.h"

namespace dsv3::train {

struct Param {
  std::string name;               // checkpoint name, e.g. model.layers.0.self_attn.q_a_proj.weight
  std::vector<int64_t> shape;
  std::vector<float> value, grad; // grad is empty for tensors no gradient reaches (gate biases)
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

//! Every tensor of `cfg` in checkpoint order, values and grads unallocated. Trainable ones
//! first; `gate_biases` receives the e_score_correction_bias tensors (main layers, then
//! MTP). The MTP layer's copies of the embedding and head are not listed (they are tied).
std::vector<Param> list_params(const model::ModelConfig& cfg, std::vector<Param>* gate_biases);

//! Fills norms with 1, gate biases with 0 and everything else with N(0, std^2), each
//! tensor from its own stream seeded by (seed, name), so the order of tensors is irrelevant.
void init_param(Param& p, uint64_t seed, double std);

//! Reads p.value from the checkpoint tensor of the same name (F32, BF16, F16, or F8_E4M3
//! with `_scale_inv` block scales, dequantised). Throws naming the tensor when it is
//! missing or its shape differs.
void load_param(const io::Checkpoint& ck, const model::ModelConfig& cfg, Param& p);

}  // namespace dsv3::train
