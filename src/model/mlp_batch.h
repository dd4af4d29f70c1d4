// Several SwiGLU MLPs (the experts a MoE layer's tokens chose, its shared experts, or one
// dense MLP), each over its own tokens, in two thread-pool jobs: all gate+up products with
// SiLU·mul fused, then all down products. Per token, decode touches a few megabytes per
// expert; one pool job per matrix (three per expert) would leave the threads waiting at a
// barrier after every small product, and splitting the concatenated rows of all experts
// keeps both threads streaming weights for the whole layer.
//
// Every (row, token) product is the kernels' own, so the results are bit-identical to
// running the MLPs one by one, whatever the batch or thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3::model {

struct MlpTask {
  const MlpWeights* w = nullptr;
  const float* x = nullptr;  // [n, hidden]
  int64_t n = 0;             // tokens
  float* out = nullptr;      // [n, hidden], overwritten
};

//! Runs every task on the workspace's pool (two jobs in all).
void run_mlps(Workspace& ws, const std::vector<MlpTask>& tasks);

}  // namespace dsv3::model
