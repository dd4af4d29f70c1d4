// Writes a checkpoint folder in the published Hugging Face layout: config.json, shards named
// model-0000k-of-0000n.safetensors and model.safetensors.index.json. Linear weights inside
// decoder layers become FP8 e4m3 with 128x128 F32 `_scale_inv` blocks (scale = block
// amax / 448, partial edge blocks, W = e4m3(q) * scale_inv) when the dtype is fp8; the gate
// bias is always F32; everything else is BF16 (or F32). Shared by the random-model
// generator and the trainer's export.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tensor_table.h"

namespace dsv3::model {

struct HfWriteOptions {
  std::string dtype = "bf16";  // "bf16" | "fp8" | "f32"
  int shards = 1;
  bool progress = false;       // progress bar on stderr (only when it is a terminal)
};

//! Fills `out` with the spec.numel() fp32 values of a tensor. May be called more than once
//! per tensor (FP8 needs the values for the codes and again for the scales), so it must
//! return the same values every time.
using HfTensorValues = std::function<void(const TensorSpec& spec, std::vector<float>& out)>;

//! Writes `specs` (in order) into `dir`, created if needed. config.json is `config` with
//! torch_dtype and quantization_config set to match the dtype. Returns bytes of tensor data.
uint64_t write_hf_checkpoint(const std::string& dir, ModelConfig config, const std::vector<TensorSpec>& specs,
                             const HfTensorValues& values, const HfWriteOptions& opts);

//! FP8 block scales of a [rows, cols] matrix: amax / 448 per bs x bs block (1 for an
//! all-zero block), [ceil(rows/bs), ceil(cols/bs)] row-major.
std::vector<float> fp8_block_scales(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t bs);

}  // namespace dsv3::model
