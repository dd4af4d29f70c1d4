// Expert-parallel inference over MPI: `mpirun -np N dsv3 generate|chat|serve|bench|logits|eval`.
//
// Rank 0 (the leader) runs the command: tokenizer, engine, sampling, HTTP server, attention,
// dense layers, shared experts, embedding and head, plus its own share of the routed
// experts. Ranks 1..N-1 (followers) hold only their share of the routed experts and run them
// for the leader. Per MoE layer the leader sends each follower the rows of the tokens routed
// to its experts (once per token, however many of its experts the token chose) with the
// expert/token lists, computes its own experts while they work, and receives each expert's
// output rows; it then mixes every token's experts in ascending order exactly as one process
// does, so the logits are bit-identical for every rank count. Bytes per token and MoE layer:
//   dispatch  4*hidden per follower holding >= 1 of the token's experts  (+ 8 per slot)
//   combine   4*hidden per token slot computed on a follower
// (docs/scale-out.md compares this with replicated attention and all-to-all dispatch.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/placement.h"
#include "model/expert_host.h"
#include "model/model.h"

namespace dsv3::dist {

//! The command line's expert-parallel settings (global flags of `dsv3`).
struct EpOptions {
  std::string expert_map;         // --expert-map FILE
  int redundant = 0;              // --redundant-experts N (per layer)
  std::string expert_loads;       // --expert-loads FILE: the loads --redundant-experts reads
  std::string save_expert_loads;  // --save-expert-loads FILE: written when the command ends
  int threads = 0;                // the followers' --threads (0: the cores / ranks on the machine)
};

//! Communication and timing of the leader's MoE layers since the model was loaded.
struct EpTraffic {
  uint64_t bytes_sent = 0, bytes_received = 0, messages = 0;
  uint64_t layer_calls = 0;  // MoE layer calls that sent work to another rank
  double send_s = 0, wait_s = 0;  // time in MPI_Send, and waiting for results after local work

  EpTraffic& operator+=(const EpTraffic& o) {
    bytes_sent += o.bytes_sent, bytes_received += o.bytes_received, messages += o.messages;
    layer_calls += o.layer_calls, send_s += o.send_s, wait_s += o.wait_s;
    return *this;
  }
  //! What happened between two readings (`later - earlier`).
  EpTraffic operator-(const EpTraffic& o) const {
    return {bytes_sent - o.bytes_sent, bytes_received - o.bytes_received, messages - o.messages,
            layer_calls - o.layer_calls, send_s - o.send_s, wait_s - o.wait_s};
  }
};

//! One rank's share: what it holds and what it has resident.
struct RankMemory {
  int rank = 0;
  int64_t experts = 0;         // routed experts held (over the layers loaded, copies included)
  uint64_t weight_bytes = 0;   // tensor bytes bound
  uint64_t weights_resident = 0; // of the checkpoint's files, in memory (/proc/self/smaps)
  uint64_t resident_bytes = 0;   // VmRSS: weights, caches, buffers, libraries
  double busy_s = 0;           // followers: time computing experts
};

//! The leader's ExpertHost: placement, per-step choice among copies, MPI traffic.
class LeaderHost final : public model::ExpertHost {
 public:
  LeaderHost(int model_id, ExpertPlacement placement);
  bool holds(int64_t layer, int64_t expert) const override;
  std::vector<bool> place(int64_t layer, const std::vector<std::pair<int32_t, int64_t>>& used) override;
  void dispatch(int64_t layer, kernels::Numerics numerics, const float* x, int64_t T, int64_t hidden,
                const std::vector<model::ExpertRows>& remote) override;
  void collect(float* ye, int64_t hidden) override;
  std::vector<std::pair<std::string, double>> counters() const override;

  int model_id() const { return id_; }
  const ExpertPlacement& placement() const { return placement_; }
  const EpTraffic& traffic() const { return traffic_; }
  void reset_traffic() { traffic_ = {}; }
  const ExpertLoads& loads() const { return loads_; }

 private:
  void dispatch_all(int64_t layer, kernels::Numerics numerics, const float* x, int64_t T, int64_t hidden,
                    const std::vector<model::ExpertRows>& remote);
  struct Pending {
    int rank;
    std::vector<std::pair<int64_t, int64_t>> slots;  // (slot0, rows) per expert, in send order
    std::vector<float> out;
  };
  int id_;
  ExpertPlacement placement_;
  std::vector<int> chosen_;  // the last place(): rank per used expert
  std::vector<Pending> pending_;
  EpTraffic traffic_;
  ExpertLoads loads_;
};

//! Loads a model for an inference command. Under mpirun with N > 1 ranks the leader tells
//! the followers to load their experts (they do it while it loads its own share) and binds
//! only its share; with --save-expert-loads a one-process run records loads too. Otherwise
//! this is Model::load.
//! `recache` is the command's --recache, which the followers apply to their share too.
model::Model load_model(const std::string& dir, model::LoadOptions opts, const EpOptions& ep, bool recache = false);

//! The leader's host of a model loaded by load_model, or nullptr.
LeaderHost* leader_host(const model::Model& m);

//! Every rank's memory (the leader asks the followers; rank 0 first). One entry without MPI.
std::vector<RankMemory> rank_memory(const model::Model& m);

//! The leader's end of the job: writes --save-expert-loads, releases the followers, leaves
//! MPI. Safe to call more than once and without MPI.
void finish(const EpOptions& ep);

//! A follower's whole life: serves the leader until it says the command is over. Returns
//! the process exit code; a failure ends the job (MPI_Abort) with the error printed.
int follow();

//! Whether `command` runs expert-parallel under mpirun (the others run on every rank).
bool expert_parallel_command(const std::string& command);

}  // namespace dsv3::dist
