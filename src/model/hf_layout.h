// The tensors of a DeepSeek-V3-family checkpoint in the published Hugging Face layout: every
// name, shape and role a config implies, in the order the published shards list them. The
// generator, the trainer's export and its completeness checks all read this one list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace dsv3::model {

//! What a tensor is, which decides its initialization and its stored dtype.
enum class TensorRole { Embedding, Linear, Head, Norm, Gate, Bias };

struct HfTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  bool fp8_eligible;   // a Linear inside a decoder layer (MTP block included): FP8 in FP8 checkpoints
  std::string source;  // == name, except for the MTP layer's stored copies of the embedding and head

  bool tied() const { return source != name; }
  uint64_t numel() const;
};

//! Every tensor of `config`'s checkpoint, gate biases (noaux_tc) and MTP copies included.
std::vector<HfTensorSpec> hf_tensor_specs(const ModelConfig& config);

//! `model.layers.{i}.mlp.gate.e_score_correction_bias` for every MoE layer that has one
//! (main layers first, then the MTP blocks), in layer order.
std::vector<std::string> hf_gate_bias_names(const ModelConfig& config);

}  // namespace dsv3::model
