// Expert parallelism, as the model sees it: a MoE layer whose routed experts are not all in
// this process asks an ExpertHost where each chosen expert runs this step, hands the host
// the rows of the experts that run elsewhere, computes its own while they are away, and
// gets their outputs back before it mixes. The model knows nothing of how rows travel
// (dist/ implements the host over MPI); it only guarantees that each expert runs over
// exactly the tokens it would run over in one process, so the mixture is bit-identical.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/numerics.h"

namespace dsv3::model {

//! One routed expert's share of a step: the tokens (rows of the layer input) routed to it,
//! ascending, and where its output rows start in the layer's gathered-output buffer.
struct ExpertRows {
  int32_t expert = 0;
  int64_t slot0 = 0;
  std::vector<int64_t> tokens;
};

//! A host keeps the state of the step in flight, so a model loaded with one runs one
//! forward pass at a time (the engine's thread), unlike a plain Model.
class ExpertHost {
 public:
  virtual ~ExpertHost() = default;
  //! Whether this process holds routed expert `expert` of MoE layer `layer` (the MTP
  //! block's layer is num_hidden_layers). Decides what the loader binds.
  virtual bool holds(int64_t layer, int64_t expert) const = 0;
  //! Splits a step's used experts (ascending, with their token counts) into those that run
  //! here and those that run elsewhere: returns true for each expert that runs here.
  virtual std::vector<bool> place(int64_t layer, const std::vector<std::pair<int32_t, int64_t>>& used) = 0;
  //! Starts the remote experts on x [T, hidden] (their rows travel now; returns without
  //! waiting for results). Every dispatch is followed by one collect, even when the local
  //! work in between fails. A dispatch that fails must leave no work half sent.
  virtual void dispatch(int64_t layer, kernels::Numerics numerics, const float* x, int64_t T, int64_t hidden,
                        const std::vector<ExpertRows>& remote) = 0;
  //! Waits for the experts of the last dispatch and writes each one's output rows at its
  //! slot0 of ye [slots, hidden].
  virtual void collect(float* ye, int64_t hidden) = 0;
  //! Cumulative figures (name, value) for monitoring, e.g. bytes moved; read them on the
  //! thread that runs the model.
  virtual std::vector<std::pair<std::string, double>> counters() const { return {}; }
};

}  // namespace dsv3::model
