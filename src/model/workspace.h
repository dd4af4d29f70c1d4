// The forward pass's working memory, owned by whoever runs the model (a generation session,
// the serving engine, `dsv3 logits`, a benchmark, a test) and passed to every call, as
// gemma.cpp passes its Activations: the model itself holds no mutable state, so one loaded
// Model can serve any number of Workspaces (one per thread that runs it).
//
// Buffers grow to the largest call they have seen and are kept, so steady-state decoding
// allocates nothing. Each function of the forward pass uses only the buffers named for it
// below, so nested calls never overwrite each other's data.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/context.h"
#include "model/profile.h"

namespace dsv3::model {

//! Not thread-safe: one thread runs a Workspace (and the pool it holds) at a time.
class Workspace {
 public:
  //! The forward pass splits its work over `pool`.
  explicit Workspace(ThreadPool& pool) : kernels(pool) {}
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  //! A float buffer that keeps its capacity across calls.
  class Buffer {
   public:
    //! At least n floats; contents unspecified.
    float* get(size_t n) {
      if (v_.size() < n) v_.resize(n);
      return v_.data();
    }
    //! n floats set to zero.
    float* zeroed(size_t n) {
      float* p = get(n);
      std::fill(p, p + n, 0.0f);
      return p;
    }

   private:
    std::vector<float> v_;
  };

  kernels::Context kernels;  // the pool and per-thread kernel scratch
  Profile* profile = nullptr;  // if set, the forward pass times its phases into it

  // Model::forward / forward_batch / forward_mtp and each decoder block.
  Buffer hidden, normed, mtp_in, block_in, block_out;
  // mla_attention: queries, latents, absorbed queries and outputs, scores, expanded K/V.
  Buffer q, q_lora, kv_a, q_abs, o_lat, attn, scores, kv_full, gathered, latent_new;
  std::vector<const float*> latent_rows;
  std::vector<const uint16_t*> latent_rows_bf16;
  std::vector<uint16_t> q_bf16, zero_bf16;  // BF16 absorbed attention: queries, a zero row
  // moe_forward / run_experts: router logits and weights, tokens gathered per expert,
  // their outputs.
  Buffer router, route_weights, expert_in, expert_out, shared_out;
  std::vector<int32_t> route_idx;
  // run_mlps: gate and up products of every task.
  Buffer mlp_gate, mlp_up;
};

}  // namespace dsv3::model
