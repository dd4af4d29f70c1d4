// Random checkpoints in the exact published Hugging Face layout (config.json, sharded
// safetensors with model.safetensors.index.json, FP8 e4m3 + 128x128 `_scale_inv` or BF16),
// from tiny test models to the `bench` preset. Weights are scaled so activations, logits
// and routing are non-degenerate: varied experts, no ties.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace dsv3::model {

struct TestModelOptions {
  std::string preset = "tiny";
  std::string dtype = "bf16";  // "bf16" | "fp8" | "f32"
  uint64_t seed = 1;
  int shards = 1;
  std::string out;
  bool progress = false;       // progress bar on stderr
  // Overrides for a model that carries a real tokenizer (0 / -1: the preset's own).
  int64_t vocab_size = 0;
  int64_t bos_token_id = -1, eos_token_id = -1;
};

//! The preset names with one-line descriptions.
std::vector<std::pair<std::string, std::string>> test_model_presets();
//! The config of a preset; throws dsv3::Error listing the presets for an unknown name.
ModelConfig test_model_config(const std::string& preset);
//! Writes the checkpoint folder. Returns the bytes of tensor data written.
uint64_t make_test_model(const TestModelOptions& opts);

}  // namespace dsv3::model
