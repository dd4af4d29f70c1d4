// Export of a trained model in the published Hugging Face layout, so `dsv3 generate`,
// `dsv3 chat` and any DeepSeek-V3 loader read it: config.json, safetensors shards + index
// with every tensor model::tensor_table() lists (the MTP layer's embed_tokens and
// shared_head.head written from the tied main tensors), gate biases as F32, weights BF16, F32
// or FP8 e4m3 with 128x128 block scales; tokenizer.json / tokenizer_config.json copied.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "train/trainable.h"

namespace dsv3::train {

//! A read-only fp32 tensor by checkpoint name.
struct ExportTensor {
  std::vector<int64_t> shape;
  const float* data;  // owned by the model; valid while it lives
};

struct ExportOptions {
  std::string dtype = "bf16";  // "bf16" | "fp8" | "f32"
  int shards = 1;
  std::string tokenizer;       // tokenizer.json or its folder; "" copies nothing
};

//! Writes `tensors` (main tensors and gate biases, by Hugging Face name) as a checkpoint of
//! `config` into `dir`. Throws dsv3::Error naming any tensor the config needs that is
//! missing or has the wrong shape, and any tensor the config has no place for.
uint64_t export_hf_checkpoint(const std::string& dir, const model::ModelConfig& config,
                              const std::map<std::string, ExportTensor>& tensors, const ExportOptions& opts);

//! The model's parameters and gate biases by name, ready for export_hf_checkpoint.
std::map<std::string, ExportTensor> named_tensors(Trainable& model);

}  // namespace dsv3::train
