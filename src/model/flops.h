// Multiply-adds of the forward pass, counted from the config: what `dsv3 bench` holds
// prefill and decode to. Matrix products count rows x cols per token (the router too);
// attention counts the naive form's work per (query, key) pair, H x (qk + v), as model-FLOP
// conventions do, whichever form runs. Norms, RoPE, softmax and the like are not counted.
#pragma once

#include <cstdint>

#include "model/config.h"

namespace dsv3::model {

//! Per token, the matrix products of decoder layer i (i = num_hidden_layers: the MTP block,
//! whose layer type follows the same rule).
double layer_macs(const ModelConfig& c, int64_t i);
//! Per token, every decoder layer's matrix products (no attention over positions, no head).
double layer_macs_per_token(const ModelConfig& c);
//! Per (query, key) pair, summed over the layers.
double attention_macs_per_pair(const ModelConfig& c);
//! The vocabulary head for one token.
double head_macs(const ModelConfig& c);
//! A forward pass of T tokens after `context` cached ones, with logits for every token or
//! (last_only, a prefill that samples) for the last one only.
double forward_macs(const ModelConfig& c, int64_t context, int64_t T, bool last_only);

}  // namespace dsv3::model
