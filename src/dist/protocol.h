// The messages between the leader (rank 0) and the followers of an expert-parallel job.
// Control messages are JSON text; MoE work travels as an int64 header, the token rows, and
// the experts' output rows back. Internal to dist/.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

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

//! Sends `j` as text to `rank` with `tag`.
void send_json(const nlohmann::json& j, int rank, int tag);
//! Receives one text message from `rank` with `tag` and parses it.
nlohmann::json recv_json(int rank, int tag);

}  // namespace dsv3::dist::protocol
