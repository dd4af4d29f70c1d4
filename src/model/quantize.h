// A BF16 (or F32) checkpoint to the published FP8 layout, as DeepSeek ships V3: the Linear
// weights inside decoder layers as e4m3 with 128x128 F32 `weight_scale_inv` blocks, every
// other tensor as it was (BF16, the gate bias F32), config.json with quantization_config,
// shards and index. The writer is the one `dsv3 train` exports with, so the same weights give
// the same bytes. Streaming: one tensor at a time is decoded, whatever the model's size.
#pragma once

#include <cstdint>
#include <string>

namespace dsv3::model {

struct QuantizeOptions {
  int shards = 0;          // 0: as many as the input has
  bool progress = false;   // progress bar on stderr (a terminal only)
};

struct QuantizeResult {
  uint64_t bytes_in = 0, bytes_out = 0;
  int64_t fp8_tensors = 0, kept_tensors = 0;
};

//! Reads the checkpoint folder `in`, writes the FP8 checkpoint to `out` (created; must not be
//! `in`), copying the tokenizer and other non-weight files. Throws dsv3::Error naming the
//! problem: an input that is already FP8, a tensor the config has no place for, a missing one.
QuantizeResult quantize_checkpoint(const std::string& in, const std::string& out, const QuantizeOptions& opts);

}  // namespace dsv3::model
