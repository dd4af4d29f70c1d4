// Auxiliary-loss-free load balancing (DeepSeek-V3 report §2.1.2): after each optimizer step
// every MoE layer's gate bias moves by gamma towards balance, judged by the tokens each
// routed expert received during that step; MaxVio measures what is left of the imbalance.
#pragma once

#include <cstdint>
#include <vector>

namespace dsv3::train {

//! b_i += gamma * sign(mean_load - load_i): under-loaded experts become more attractive,
//! over-loaded ones less; an expert exactly at the mean stays put.
void update_gate_bias(std::vector<float>& bias, const std::vector<int64_t>& load, double gamma);
//! max_i load_i / mean_load - 1 (0 for a layer that routed nothing).
double max_violation(const std::vector<int64_t>& load);

}  // namespace dsv3::train
