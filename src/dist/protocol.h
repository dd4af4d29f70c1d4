// The messages between the leader (rank 0) and the followers of an expert-parallel job.
// Control messages are JSON text; MoE work travels as an int64 header, the token rows, and
// the experts' output rows back. Internal to dist/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dist/expert_parallel.h"

namespace dsv3::dist::protocol {

enum Tag : int {
  kControl = 11,  // leader -> follower: {"op": "load" | "stats" | "end", ...}
  kReply = 12,    // follower -> leader: the answer to load / stats
  kWork = 13,     // leader -> follower: int64 header (layout below)
  kRows = 14,     // leader -> follower: fp32 token rows [n_rows, hidden]
  kResult = 15,   // follower -> leader: fp32 expert outputs [slots, hidden], in header order
};

// kWork header: model id, layer, numerics, reference kernels (0/1), hidden, n_rows, n_experts,
// then per expert: expert index, token count, that many row indices into the kRows rows.
constexpr int kHeaderFixed = 7;

//! Blocking transfers of any length (MPI counts are int: long prefills go in pieces).
void send_int64s(const std::vector<int64_t>& v, int rank, int tag);
void send_floats(const float* p, int64_t n, int rank, int tag);
void recv_floats(float* p, int64_t n, int rank, int tag);

//! This process's memory figures for a model it loaded (rank 0's own entry and a
//! follower's `stats` reply), and their JSON form on the wire.
RankMemory measure_memory(const model::ModelWeights& w, int64_t experts);
nlohmann::json to_json(const RankMemory& m);
RankMemory rank_memory_from_json(const nlohmann::json& j, int rank);

//! Sends `j` as text to `rank` with `tag`.
void send_json(const nlohmann::json& j, int rank, int tag);
//! Receives one text message from `rank` with `tag` and parses it.
nlohmann::json recv_json(int rank, int tag);

}  // namespace dsv3::dist::protocol
