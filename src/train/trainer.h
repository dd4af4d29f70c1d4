// The training loop of `dsv3 train`: micro-batches with gradient accumulation, global-norm
// clipping, AdamW under the lr schedule, the gate-bias update after every step, evaluation,
// the JSONL metrics log, periodic training state + Hugging Face export, the loss plot.
//
// Out folder layout: metrics.jsonl, loss.svg, run.json (the resolved run config), state/
// (resumable training state), hf/ (the exported checkpoint), cache/ (token ids).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "threading/pool.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/run_config.h"
#include "train/trainable.h"

namespace dsv3::train {

class Teacher;

struct TrainerOptions {
  std::string resume;        // a state folder to continue from ("": a fresh run)
  int64_t stop_after = 0;    // stop after this step (state saved) without changing the schedule; 0: run to the end
  bool progress = true;      // progress bar / lines on stderr
  bool profile = false;      // time the steps by phase (step_profile.h); the table goes to TrainResult::profile
  double peak_gflops = 0;    // the machine's peak for this precision (train() probes it); 0: no MFU
  const Tokenizer* tokenizer = nullptr;  // needed for data.passkey_fraction (train() sets it)
  Teacher* teacher = nullptr;            // run.distill's teacher (train() loads it); null: no distillation
  ThreadPool* pool = nullptr;            // splits the optimizer step (train() sets it); null: the calling thread
};

struct TrainResult {
  int64_t first_step = 0;             // steps already done when this call began
  int64_t steps = 0;                  // steps done when it returned
  int64_t total_steps = 0;
  int64_t tokens = 0;                 // training tokens seen in all, resumed part included
  double seconds = 0;                 // wall time of this call's steps
  int64_t run_tokens = 0;             // training tokens of this call's steps
  std::vector<double> losses;         // training loss of each step this call took
  double eval_loss = NAN, eval_perplexity = NAN;  // last evaluation (NaN: none)
  double text_perplexity = NAN;       // last evaluation's replay text (data.replay.eval_files; NaN: none)
  std::vector<double> maxvio;         // last step's, per MoE layer
  std::string state_dir, export_dir;  // export_dir empty when nothing was exported
  double flops = 0;                   // model FLOPs of this call's steps (train_flops.h; 0 for models without a V3 config)
  double peak_gflops = 0;             // what mfu is measured against (0: no MFU)
  std::string peak_kind;              // "fp32 FMA" or "BF16 dot product"
  std::string profile;                // the phase table when TrainerOptions::profile
  int64_t kept_bytes = 0;             // activations one sequence keeps for its backward pass (largest seen)
  int64_t kept_block_bytes = 0;       // of them, the decoder blocks' (where fp8 keeps Linear inputs in FP8)
  double mfu() const { return peak_gflops > 0 && seconds > 0 && flops > 0 ? flops / seconds / (peak_gflops * 1e9) : NAN; }
};

//! The peak a run's MFU is measured against, probed on `pool` the way `dsv3 bench` probes:
//! the fp32 FMA peak for precision fp32; for bf16 and fp8 the faster of that and the BF16
//! dot-product peak (their GEMMs run vdpbf16ps where the CPU has it, fp32 FMAs elsewhere).
//! Sets kind to the unit's name.
double probe_training_peak(ThreadPool& pool, const std::string& precision, std::string& kind);

//! Trains `model` on `data` as `run` says. Throws dsv3::Error on divergence (non-finite loss
//! or gradient norm) and on any I/O problem.
TrainResult run_training(const RunConfig& run, Trainable& model, const TokenData& data, const TrainerOptions& opts);

//! The whole command: tokenizes (or reads the cache), builds the model with make_trainable
//! on `pool`, and runs run_training.
TrainResult train(const RunConfig& run, const TrainerOptions& opts, ThreadPool& pool);

//! One line summing up a result, for the end of a run.
std::string summary_line(const TrainResult& r);

}  // namespace dsv3::train
