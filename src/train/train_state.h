// The resumable training state, separate from the Hugging Face export: fp32 weights, AdamW
// moments and step count, gate biases, the data sampler's RNG state and position, and the
// run config, in DIR/state.safetensors + DIR/state.json. Restoring it and continuing gives
// bit-for-bit the run that never stopped.
#pragma once

#include <cstdint>
#include <string>

#include "train/data.h"
#include "train/optimizer.h"
#include "train/run_config.h"
#include "train/trainable.h"

namespace dsv3::train {

struct TrainProgress {
  int64_t step = 0;           // optimizer steps completed
  int64_t tokens_seen = 0;    // predicted training tokens so far
  double elapsed_s = 0;       // training wall time so far
  WindowSampler::State data;
  int64_t train_tokens = 0;   // size of the token stream the sampler state refers to
  WindowSampler::State replay;  // the replay text's sampler (data.replay), and its stream's size
  int64_t replay_tokens = 0;
};

//! Writes the state into `dir`, replacing an older one only once the new one is complete.
void save_train_state(const std::string& dir, Trainable& model, AdamW& opt, const TrainProgress& progress,
                      const RunConfig& run);

//! The run config stored with a state (paths absolute). Throws if `dir` holds no state.
RunConfig saved_run_config(const std::string& dir);

//! Loads weights, moments and biases into `model` / `opt` (built for the same run; opt
//! attached) and returns the progress. Throws dsv3::Error naming any tensor that is missing
//! or has a different size, or a state of another kind of model.
TrainProgress load_train_state(const std::string& dir, Trainable& model, AdamW& opt);

}  // namespace dsv3::train
