// The arithmetic of an expert-parallel job, before running it: what each rank holds, the
// bytes the leader moves per token and MoE layer, and the decode speed that memory bandwidth
// and the link allow. `dsv3 inspect --ranks N` prints it; `dsv3 bench` under mpirun compares
// the measured traffic with it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "dist/placement.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/tensor_table.h"

namespace dsv3::dist {

struct RankPlan {
  int rank = 0;
  uint64_t bytes = 0;          // weights held: replicated (rank 0) + its routed experts
  int64_t experts = 0;         // routed experts held, copies included
  double slots_per_token = 0;  // expected routed-expert slots computed here, per token and MoE layer
  double touched = 0;          // followers: probability a token has >= 1 expert here (one row sent)
};

struct EpPlan {
  int ranks = 1;
  int64_t moe_layers = 0;        // of the main model (the MTP block's only run when drafting)
  uint64_t total_bytes = 0;      // the whole checkpoint
  uint64_t replicated_bytes = 0; // everything but the routed experts (held by rank 0 only)
  uint64_t routed_bytes = 0;     // all routed experts
  uint64_t embed_bytes = 0;      // the embedding table (one row read per token)
  uint64_t mtp_replicated_bytes = 0;  // the MTP block's non-expert tensors (read only when drafting)
  double expert_bytes = 0;       // one routed expert of one layer
  std::vector<RankPlan> per_rank;
  // Leader traffic per token and MoE layer (decode): rows out, expert outputs back.
  double dispatch_bytes = 0, combine_bytes = 0;
  double bytes_per_token() const { return double(moe_layers) * (dispatch_bytes + combine_bytes); }

  //! Decode time per token (batch 1) when each rank reads `mem_gb_s` GB/s and the leader's
  //! link carries `link_gbit_s` Gbit/s with `latency_us` one way: rank 0's non-expert weights,
  //! then per MoE layer the slowest rank's experts plus a round trip and the bytes moved.
  double seconds_per_token(double mem_gb_s, double link_gbit_s, double latency_us) const;
};

//! Bytes of each tensor of the checkpoint: from the files when they are there, else
//! estimated from config.json (FP8 with block scales where fp8_eligible and quantized, BF16
//! elsewhere).
using TensorBytes = std::function<uint64_t(const model::TensorSpec&)>;
TensorBytes estimated_bytes(const model::ModelConfig& c);
//! The bytes in `ck` (a tensor with its block scales), estimated for tensors it lacks.
//! Both must outlive the result.
TensorBytes checkpoint_bytes(const io::Checkpoint& ck, const model::ModelConfig& c);

//! Expectations assume routing spreads evenly (what the auxiliary-loss-free balancing aims
//! at): a token keeps topk_group of n_group groups, then its experts anywhere in them.
//! `mtp`: count the MTP layer's tensors (loaded for speculative decoding).
EpPlan make_plan(const model::ModelConfig& c, const ExpertPlacement& p, const TensorBytes& bytes, bool mtp = true);

}  // namespace dsv3::dist
