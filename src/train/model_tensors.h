// The whole DeepSeek-V3 model's weights (or their gradients) for training, as pointers into
// fp32 buffers, shaped like the inference structs (model/weights.h) so model::bind_member
// fills both from the one tensor table. The MTP module's copies of embedding and head have
// no place: training keeps them tied to embed and lm_head. Gate biases are not here either
// (they only select experts and get no gradient); the model keeps them beside.
#pragma once

#include <vector>

#include "train/block_grad.h"

namespace dsv3::train {

template <class S>
struct MtpTensors {
  S *enorm = nullptr, *hnorm = nullptr;
  S* eh_proj = nullptr;    // [hidden, 2*hidden]: [emb ; hidden] order
  S* head_norm = nullptr;  // shared_head.norm
  BlockTensors<S> block;
};

template <class S>
struct ModelTensors {
  S* embed = nullptr;      // [vocab, hidden]
  std::vector<BlockTensors<S>> layers;
  S* final_norm = nullptr;
  S* lm_head = nullptr;    // [vocab, hidden]
  MtpTensors<S> mtp;       // all null without an MTP layer
};

}  // namespace dsv3::train
