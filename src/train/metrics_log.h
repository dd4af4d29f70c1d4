// The run's metrics as JSON Lines (one object per line, `"kind": "train"` or `"eval"`), so
// any tool can follow a run while it trains; read_loss_curves reads the file back for the
// final plot. A resumed run first drops lines written after the state it resumes from.
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace dsv3::train {

struct StepRecord {
  int64_t step = 0;                 // 1-based: the optimizer step just taken
  double lr = 0, loss = 0, main_ce = 0, mtp_ce = 0, balance = 0, grad_norm = 0;
  double kd = NAN;                  // KL to the teacher (distillation); NaN: none (not logged)
  double mtp_weight = 0, gamma = 0;
  int64_t tokens = 0;               // training tokens so far
  double tokens_per_s = 0;
  double mfu = -1;                  // model FLOPs utilisation of this step; < 0: not known (not logged)
  std::vector<double> maxvio;       // per MoE layer
  std::vector<std::vector<int64_t>> expert_load;  // per MoE layer; empty when not logged this step
};

struct EvalRecord {
  int64_t step = 0;
  double loss = 0, perplexity = 0;
  int64_t tokens = 0;               // evaluated tokens
  double accuracy = NAN;            // main head's argmax = next token (NaN: not counted)
  double mtp_loss = NAN, mtp_accuracy = NAN;  // the MTP head on the next-next token (NaN: no MTP module)
  double text_loss = NAN, text_perplexity = NAN;  // the replay text's held-out windows (NaN: none)
};

class MetricsLog {
 public:
  //! Opens `path`. keep_up_to < 0: starts a new file; else keeps the lines of steps <= keep_up_to.
  MetricsLog(const std::string& path, int64_t keep_up_to);
  void write(const StepRecord& r);
  void write(const EvalRecord& r);

 private:
  std::string path_;
  std::ofstream out_;
};

struct LossCurves {
  std::vector<std::pair<int64_t, double>> train, eval;  // (step, loss)
};
//! The train and eval losses in a metrics file (missing file: empty curves).
LossCurves read_loss_curves(const std::string& path);

//! One metric over steps from a metrics file (`dsv3 plot`): every line, train or eval, whose
//! `field` is a number gives (step, value); an array (maxvio per MoE layer) gives its mean,
//! and `field[i]` its element i. Throws dsv3::Error when the file cannot be read or no line
//! has the field (naming the fields it has).
std::vector<std::pair<double, double>> read_metric(const std::string& path, const std::string& field);

}  // namespace dsv3::train
