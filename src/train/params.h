// The trainable tensors of a DeepSeek-V3 model, as fp32 master weights under their
// checkpoint names: which ones (the tensor table, model/tensor_table.h, minus the tied MTP
// copies), in which order, and how their values are made (random init by role) or read
// (through the inference loader, any checkpoint dtype, FP8 dequantised).
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/tensor_table.h"
#include "model/weights.h"

namespace dsv3::train {

//! The table entries training keeps a fp32 tensor for (all but the MTP layer's tied copies
//! of embedding and head), in the order the forward pass reads them: embedding; per block
//! its attention norm, attention, MLP norm, router and MLPs; final norm and head; then the
//! MTP module's enorm, hnorm, eh_proj, its block and its head norm. The order is part of
//! the results: the global gradient norm sums over the parameters in it.
std::vector<model::TensorSpec> trainable_specs(const model::ModelConfig& cfg);

//! Fresh values by role: norms 1, gate biases 0, everything else N(0, std^2) from its own
//! stream seeded by (seed, name), so the order of tensors is irrelevant.
void init_values(const model::TensorSpec& spec, uint64_t seed, double std, std::vector<float>& out);

//! The fp32 values of `spec`'s tensor in checkpoint weights bound by ModelWeights::bind
//! (whose checks and dtype decoding are the only ones: FP8 dequantised with its scales).
void read_values(const model::TensorSpec& spec, model::ModelWeights& weights, std::vector<float>& out);

}  // namespace dsv3::train
